"""Trains the configured candidate kinds and ranks them on a held-out validation slice.

Training is blocking, CPU-bound work. The orchestrator runs :func:`train_in_process` in a
process pool: a :class:`TrainJob` of plain data goes in, a :class:`TrainOutcome` of plain data
comes out, and the best model crosses over only as files on disk with their hashes.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from workers.retrain.features import FeatureSpec
from workers.retrain.models import Task, TrainedModel, fit_model, fits_task
from workers.retrain.scoring import higher_is_better, score

log = logging.getLogger(__name__)

Rows = Sequence[Mapping[str, Any]]
Labels = NDArray[Any] | Sequence[float]


@dataclass(frozen=True)
class CandidateResult:
    kind: str
    model: TrainedModel
    validation_metric: float
    train_seconds: float


def _rank(metric: str, value: float) -> tuple[bool, float]:
    """Sort key, best first; NaN (e.g. ROC AUC on one class) ranks last."""
    if math.isnan(value):
        return (True, 0.0)
    return (False, -value if higher_is_better(metric) else value)


PROBABILITY_METRICS = frozenset({"log_loss"})


def train_candidates(
    task: Task,
    metric: str,
    kinds: Sequence[str],
    spec: FeatureSpec,
    train_rows: Rows,
    train_labels: Labels,
    val_rows: Rows,
    val_labels: Labels,
    params: Mapping[str, Any] | None = None,
    seed: int = 7,
) -> list[CandidateResult]:
    """Fits every kind that fits ``task`` and scores it on the validation rows, best first.

    A kind that cannot do the task is skipped with a log line, since one candidate list serves
    models of either task; an unknown kind is a config mistake and raises ValueError.
    """
    y_val = np.asarray(val_labels, dtype=np.float64)
    if not val_rows or y_val.shape != (len(val_rows),):
        raise ValueError(f"{len(val_rows)} validation rows with labels of shape {y_val.shape}")
    score(metric, y_val[:1], y_val[:1])  # an unknown metric fails before minutes of training
    fitting = [kind for kind in dict.fromkeys(kinds) if fits_task(kind, task)]
    for kind in dict.fromkeys(kinds):
        if kind not in fitting:
            log.info("skipping candidate %s: it cannot do a %s task", kind, task)
    if not fitting:
        raise ValueError(f"no candidate among {list(kinds)} can do a {task} task")
    if task == "binary" and metric in PROBABILITY_METRICS:
        # Judged on its probabilities: class reweighting would push every probability
        # toward the rarer class, which log loss punishes. Config params still win.
        params = {"class_weight": None, **(params or {})}
    results: list[CandidateResult] = []
    for kind in fitting:
        started = time.perf_counter()
        model = fit_model(kind, task, spec, train_rows, train_labels, params, seed)
        seconds = time.perf_counter() - started
        value = score(metric, y_val, model.predict(val_rows))
        log.info(
            "candidate %s: %s=%.6g on validation, trained in %.2fs", kind, metric, value, seconds
        )
        results.append(CandidateResult(kind, model, value, seconds))
    return sorted(results, key=lambda r: _rank(metric, r.validation_metric))


def best(results: Sequence[CandidateResult]) -> CandidateResult:
    """The first of :func:`train_candidates`' best-first results."""
    if not results:
        raise ValueError("no candidate results to choose from")
    return results[0]


@dataclass(frozen=True)
class TrainJob:
    """Everything a training process needs, as plain data that pickles cheaply."""

    task: Task
    metric: str
    kinds: tuple[str, ...]
    feature_names: tuple[str, ...]
    train_rows: list[dict[str, Any]]
    train_labels: list[float]
    val_rows: list[dict[str, Any]]
    val_labels: list[float]
    params: dict[str, Any] | None
    seed: int
    output_dir: str


@dataclass(frozen=True)
class TrainOutcome:
    """What the training process reports; the best model itself is in ``TrainJob.output_dir``."""

    best_kind: str
    validation_metrics: dict[str, float]
    train_seconds: dict[str, float]
    files: dict[str, str]
    """{file name: sha256} of the best model's saved files, for :func:`load_model`."""
    spec: dict[str, Any]


def train_in_process(job: TrainJob) -> TrainOutcome:
    """Infers the spec, trains the candidates, saves the best; meant for a process pool."""
    spec = FeatureSpec.infer(job.feature_names, job.train_rows)
    results = train_candidates(
        job.task,
        job.metric,
        job.kinds,
        spec,
        job.train_rows,
        job.train_labels,
        job.val_rows,
        job.val_labels,
        job.params,
        job.seed,
    )
    winner = best(results)
    output = Path(job.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    files = winner.model.save(output)
    return TrainOutcome(
        best_kind=winner.kind,
        validation_metrics={r.kind: r.validation_metric for r in results},
        train_seconds={r.kind: r.train_seconds for r in results},
        files=files,
        spec=spec.to_dict(),
    )
