"""Recall: when a model degrades, an earlier champion may already know the new data.

A concept that comes back (a season, a campaign that ends, a sensor that is fixed) is
served again by the version that learned it, as soon as a few hundred post-change
examples have matured, instead of waiting for enough rows to train on. Each earlier
champion is scored on the post-change examples the current champion served; the best
replaces it only when the lower end of a bootstrap interval of its improvement clears
``recall.min_improvement``. Runs in the training process, like a retrain: loading rows
and models is blocking work.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

from workers.db.pool import init_connection
from workers.retrain import sql
from workers.retrain.controller import recall_rows
from workers.retrain.gates import GateResult, ModelView, model_gate
from workers.retrain.models import ArtifactError, load_model
from workers.retrain.scoring import higher_is_better, score
from workers.settings import GatesConfig, ModelConfig


@dataclass(frozen=True)
class Former:
    """An earlier champion with its artifact."""

    version: str
    artifact_dir: str
    files: dict[str, str]


@dataclass(frozen=True)
class RecallJob:
    dsn: str
    model: str
    cfg: ModelConfig
    champion: str
    change_at: datetime
    formers: tuple[Former, ...]
    seed: int = 7


@dataclass
class RecallResult:
    rows: int = 0  # post-change examples the champion served, that every version was scored on
    champion_score: float | None = None
    scores: dict[str, float] = field(default_factory=dict)  # version -> metric on those rows
    unusable: dict[str, str] = field(default_factory=dict)  # version -> why it was not scored
    best: str | None = None
    gate: GateResult | None = None  # the best earlier version's improvement over the champion
    seconds: float = 0.0

    @property
    def recalled(self) -> str | None:
        """The version to serve again, or None."""
        return self.best if self.gate is not None and self.gate.passed else None

    def describe(self) -> dict[str, Any]:
        """For retrain_runs.dataset (jsonb: no NaN, so undefined scores are null)."""
        return {
            "rows": self.rows,
            "champion_score": _finite(self.champion_score),
            "scores": {v: _finite(s) for v, s in self.scores.items()},
            "unusable": self.unusable,
            "best": self.best,
            "recalled": self.recalled,
        }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def best_version(metric: str, scores: dict[str, float]) -> str | None:
    """The earlier version with the best finite score (None when none has one)."""
    finite = {v: s for v, s in scores.items() if np.isfinite(s)}
    if not finite:
        return None
    pick = max if higher_is_better(metric) else min
    return pick(finite, key=lambda v: finite[v])


async def _rows(job: RecallJob) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(job.dsn)
    try:
        await init_connection(conn)
        records = await sql.dataset(conn, job.model, job.change_at, job.cfg.retrain.max_rows)
    finally:
        await conn.close()
    # Only what the champion itself served: its logged scores are its side of the comparison.
    return [r for r in records if r["model_version"] == job.champion]


def recall_job(job: RecallJob) -> RecallResult:
    """Score every earlier champion against the champion on the post-change rows."""
    began = time.perf_counter()
    cfg = job.cfg
    metric = cfg.retrain_metric
    result = RecallResult()
    records = asyncio.run(_rows(job))
    result.rows = len(records)
    if result.rows < recall_rows(cfg.retrain):
        result.seconds = time.perf_counter() - began
        return result
    features = [dict(r["features"]) for r in records]
    labels = np.array([r["label"] for r in records], dtype=float)
    champion = np.array([r["prediction"] for r in records], dtype=float)
    result.champion_score = score(metric, labels, champion)
    predictions: dict[str, np.ndarray] = {}
    for former in job.formers:
        try:
            model = load_model(Path(former.artifact_dir), former.files)
            predictions[former.version] = np.asarray(model.predict(features), dtype=float)
        except (ArtifactError, OSError, ValueError) as exc:
            result.unusable[former.version] = str(exc)[:300]
            continue
        result.scores[former.version] = score(metric, labels, predictions[former.version])
    result.best = best_version(metric, result.scores)
    if result.best is not None:
        gates = GatesConfig(
            min_improvement=cfg.retrain.recall.min_improvement,
            bootstrap_resamples=max(cfg.retrain.gates.bootstrap_resamples, 200),
            improvement_confidence=cfg.retrain.gates.improvement_confidence,
            require_significant=True,
        )
        view = ModelView(
            task=cfg.task,
            metric=metric,
            eval_labels=labels,
            candidate_eval=predictions[result.best],
            champion_eval=champion,
            recent_labels=None,
            candidate_recent=None,
            champion_recent=None,
            contract_features=(),
            candidate_features=(),
            contract_task=cfg.task,
            candidate_task=cfg.task,
        )
        result.gate = model_gate("improvement", view, gates, seed=job.seed)
    result.seconds = time.perf_counter() - began
    return result
