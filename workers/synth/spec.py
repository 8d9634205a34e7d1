"""What a synthetic run is: light to import (the CLI reads it before anything heavy)."""

from __future__ import annotations

from dataclasses import dataclass

SCENARIOS = ("ctr", "purchase")


@dataclass(frozen=True)
class ScenarioSpec:
    name: str
    count: int = 2000
    rate: float = 100.0  # predictions per second
    seed: int = 7
    drift_at: float = 0.5
    malformed_share: float = 0.01
    feedback_share: float = 0.03
    late_prediction_share: float = 0.05
    mean_outcome_delay: float = 3.0
    run_id: str = "run"
    version: str = "v1"  # the champion's version the predictions are stamped with
