"""How a score becomes an answer: canary routing, blending, the confidence threshold.
Pure, so every option can be tested without a model or a broker."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

Source = Literal["model", "canary", "fallback"]


@dataclass(frozen=True)
class ServingOptions:
    """Per-client options, as the seeds used them.

    - ``confidence_threshold``: a binary score whose confidence max(p, 1-p) is below it is
      answered as uncertain.
    - ``blend_weight``: the share of the model in a blend with a rule-based score
      (1.0 = model only; 0.0 = rules only).
    - ``canary_share``: the share of requests routed to the candidate version, chosen by a
      stable hash of the routing key so one entity always sees one version.
    """

    confidence_threshold: float | None = None
    blend_weight: float = 1.0
    canary_share: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.blend_weight <= 1.0:
            raise ValueError("blend_weight must be within [0, 1]")
        if not 0.0 <= self.canary_share <= 1.0:
            raise ValueError("canary_share must be within [0, 1]")
        if self.confidence_threshold is not None and not 0.5 <= self.confidence_threshold <= 1.0:
            raise ValueError("confidence_threshold must be within [0.5, 1]")


def in_canary(routing_key: str, share: float) -> bool:
    if share <= 0:
        return False
    if share >= 1:
        return True
    bucket = int.from_bytes(hashlib.sha256(routing_key.encode()).digest()[:8], "big") / 2**64
    return bucket < share


def blend(model_score: float, rule_score: float | None, weight: float) -> float:
    if rule_score is None or weight >= 1.0:
        return model_score
    return weight * model_score + (1.0 - weight) * rule_score


def uncertain(score: float, threshold: float | None, task: str) -> bool:
    if threshold is None or task != "binary":
        return False
    return max(score, 1.0 - score) < threshold
