"""The heavy part of a retrain run, in the training process: load the dataset from
PostgreSQL, check it, train, evaluate against the champion and run every gate.

Run there, not on the worker: loading and scoring a million examples would stall the
event loop for seconds, and the rows would otherwise be pickled across to the training
process. The worker sends a small `RunJob` and gets a `RunResult` back; the rows never
leave this process, which ends after each run (its memory goes with it).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

from workers.db.pool import init_connection
from workers.lifetime import die_with_parent
from workers.retrain.dataset import (
    Row,
    check_leakage,
    load_dataset,
    numeric_columns,
    temporal_split,
    training_start,
)
from workers.retrain.gates import DataView, GateResult, ModelView, data_gates, first_failure
from workers.retrain.gates import model_gates as run_model_gates
from workers.retrain.models import load_model
from workers.retrain.scoring import score
from workers.retrain.trainer import TrainJob, TrainOutcome, train_in_process
from workers.settings import ModelConfig


@dataclass(frozen=True)
class RunJob:
    """Everything the training process needs; small, so it pickles cheaply."""

    dsn: str
    model: str
    cfg: ModelConfig
    run_id: int
    change_at: datetime | None
    work_dir: str
    champion_dir: str | None  # the champion's artifact folder, if it has one
    champion_files: dict[str, str] | None
    has_champion: bool


@dataclass
class RunResult:
    dataset_info: dict[str, Any] = field(default_factory=dict)
    report: list[GateResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    outcome: TrainOutcome | None = None  # None: a data gate stopped the run
    metrics: dict[str, float] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)


def preload(parent: int) -> None:
    """A training process's initializer: end with the worker (even a SIGKILLed one leaves
    no training process behind), and import the learners before a run needs them
    (LightGBM, scikit-learn and their native libraries take seconds to load)."""
    die_with_parent(parent, "the training process")
    import lightgbm  # noqa: F401
    import sklearn.linear_model  # noqa: F401


def warm() -> None:
    """Nothing: the first child of a pool runs this so its replacement starts warm."""


async def _load(job: RunJob) -> tuple[list[Row], int, datetime | None]:
    conn = await asyncpg.connect(job.dsn)
    try:
        await init_connection(conn)
        since = await training_start(conn, job.model, job.cfg, job.change_at)
        rows, early = await load_dataset(conn, job.model, job.cfg, job.change_at)
    finally:
        await conn.close()
    return rows, early, since


def run_job(job: RunJob) -> RunResult:
    """The run from its dataset to its gate report; the candidate's files in work_dir.
    Raises LeakageError when the data would teach the answer."""
    cfg = job.cfg
    result = RunResult()
    t = time.perf_counter()
    rows, early, since = asyncio.run(_load(job))
    result.dataset_info["window"] = {
        "basis": "after the change" if job.change_at else "lookback before the newest example",
        "from": since.isoformat() if since else None,
        "change_at": job.change_at.isoformat() if job.change_at else None,
    }
    result.timings["dataset_export"] = time.perf_counter() - t

    t = time.perf_counter()
    names = list(cfg.features) or sorted({k for r in rows for k in r.features})
    columns = numeric_columns(rows, names)
    leakage = check_leakage(rows, names, columns)
    split = temporal_split(rows, cfg.retrain.validation_share, cfg.retrain.recent_seconds)
    result.split = split.describe()
    result.dataset_info.update(
        result.split,
        rows=len(rows),
        left_out_early_labels=early,
        leakage_checked=leakage,
        features=names,
    )
    result.report += data_gates(
        DataView(
            task=cfg.task,
            labels=np.array([r.label for r in rows], dtype=float),
            predicted_at=np.array([r.predicted_at.timestamp() for r in rows], dtype=float),
            features=columns,
        ),
        cfg.retrain.gates,
    )
    result.timings["data_gates"] = time.perf_counter() - t
    if first_failure(result.report) is not None:
        return result
    del rows  # the split holds what is still needed

    t = time.perf_counter()
    outcome = train_in_process(
        TrainJob(
            task=cfg.task,
            metric=cfg.retrain_metric,
            kinds=tuple(cfg.retrain.candidates),
            feature_names=tuple(names),
            train_rows=[dict(r.features) for r in split.train],
            train_labels=[r.label for r in split.train],
            val_rows=[dict(r.features) for r in split.validation],
            val_labels=[r.label for r in split.validation],
            params=dict(cfg.retrain.params),
            seed=job.run_id,
            output_dir=job.work_dir,
        )
    )
    result.outcome = outcome
    result.timings["training"] = time.perf_counter() - t

    t = time.perf_counter()
    candidate = load_model(Path(job.work_dir), outcome.files)
    champ_model = None
    if job.champion_dir and job.champion_files is not None:
        champ_model = load_model(Path(job.champion_dir), job.champion_files)

    def predict(rows: list[Row], who: str) -> np.ndarray | None:
        if not rows:
            return None
        feats = [dict(r.features) for r in rows]
        if who == "candidate":
            return candidate.predict(feats)
        if champ_model is not None:
            return champ_model.predict(feats)
        # No artifact for the champion (it was trained elsewhere): its own logged
        # scores on these rows stand in for it. Comparison only, never a label.
        return np.array([r.prediction for r in rows], dtype=float)

    candidate_eval = predict(split.validation, "candidate")
    if candidate_eval is None:
        raise ValueError("no validation rows: the dataset is too small to split")
    val_labels = np.array([r.label for r in split.validation], dtype=float)
    recent_labels = np.array([r.label for r in split.recent], dtype=float) if split.recent else None
    view = ModelView(
        task=cfg.task,
        metric=cfg.retrain_metric,
        eval_labels=val_labels,
        candidate_eval=candidate_eval,
        champion_eval=predict(split.validation, "champion") if job.has_champion else None,
        recent_labels=recent_labels,
        candidate_recent=predict(split.recent, "candidate"),
        champion_recent=predict(split.recent, "champion") if job.has_champion else None,
        contract_features=tuple(cfg.features),
        candidate_features=tuple(candidate.spec.names),
        contract_task=cfg.task,
        candidate_task=candidate.task,
    )
    result.report += run_model_gates(view, cfg.retrain.gates, seed=job.run_id)
    result.timings["evaluation"] = time.perf_counter() - t

    metric = cfg.retrain_metric
    result.metrics[f"validation_{metric}"] = score(metric, val_labels, view.candidate_eval)
    if view.champion_eval is not None:
        result.metrics[f"champion_validation_{metric}"] = score(
            metric, val_labels, view.champion_eval
        )
    if recent_labels is not None and view.candidate_recent is not None:
        result.metrics[f"recent_{metric}"] = score(metric, recent_labels, view.candidate_recent)
    result.samples = {
        "train": len(split.train),
        "validation": len(split.validation),
        "recent": len(split.recent),
    }
    return result
