"""The training set: time-sliced rows, a leakage check, and a temporal split. Pure, but
for `load_dataset`, which runs the one query."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from workers.db.pool import Conn
from workers.errors import OutcomeLoopError
from workers.retrain import sql
from workers.retrain.features import PLAIN_NUMERIC, numeric_column
from workers.settings import ModelConfig

# A numeric feature this correlated with the label, or equal to it this often, is a
# copy of the label that leaked into the inputs: the model would learn nothing real.
LEAK_CORRELATION = 0.98
LEAK_EQUAL_SHARE = 0.95


class LeakageError(OutcomeLoopError):
    """The training data would teach the model the answer: the run stops."""


@dataclass(frozen=True)
class Row:
    prediction_id: str
    version: str
    features: Mapping[str, Any]
    label: float
    prediction: float  # the serving model's own score: for comparison, never a feature
    predicted_at: datetime
    labeled_at: datetime | None


@dataclass(frozen=True)
class Split:
    train: list[Row]
    validation: list[Row]
    recent: list[Row]

    def describe(self) -> dict[str, Any]:
        def span(rows: list[Row]) -> dict[str, Any]:
            if not rows:
                return {"n": 0}
            return {
                "n": len(rows),
                "from": rows[0].predicted_at.isoformat(),
                "to": rows[-1].predicted_at.isoformat(),
            }

        return {
            "train": span(self.train),
            "validation": span(self.validation),
            "recent": span(self.recent),
        }


async def training_start(
    conn: Conn, model: str, cfg: ModelConfig, change_at: datetime | None
) -> datetime | None:
    """Where the training window starts, in example time: where the change began when one
    is known, else ``lookback_seconds`` before the newest matured example. Never the wall
    clock, which a backlog can outrun. None: no example yet."""
    if change_at is not None:
        return change_at
    newest = await sql.newest_predicted(conn, model)
    return None if newest is None else newest - timedelta(seconds=cfg.retrain.lookback_seconds)


async def load_dataset(
    conn: Conn, model: str, cfg: ModelConfig, change_at: datetime | None = None
) -> tuple[list[Row], int]:
    """The newest ``max_rows`` rows from the training window's start, oldest first; and how
    many were left out for a label older than the prediction."""
    since = await training_start(conn, model, cfg, change_at)
    if since is None:
        return [], 0
    records = await sql.dataset(conn, model, since, cfg.retrain.max_rows)
    early = await sql.early_labels(conn, model, since)
    rows = [
        Row(
            r["prediction_id"],
            r["model_version"],
            r["features"],
            r["label"],
            r["prediction"],
            r["predicted_at"],
            r["labeled_at"],
        )
        for r in records
    ]
    return rows, early


def numeric_columns(rows: Sequence[Row], names: Sequence[str]) -> dict[str, np.ndarray]:
    """The features whose every value is a number or missing, as float columns (NaN for
    missing): read once, then shared by the leakage check and the data gates."""
    out: dict[str, np.ndarray] = {}
    for name in names:
        values = [r.features.get(name) for r in rows]
        if {type(v) for v in values} <= PLAIN_NUMERIC:
            out[name] = numeric_column(values)
    return out


def check_leakage(
    rows: Sequence[Row],
    feature_names: Sequence[str],
    columns: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Raise LeakageError on a label older than its prediction or a feature that copies the
    label; else return what was checked. ``columns``: numeric_columns of the rows."""
    early = [
        r.prediction_id for r in rows if r.labeled_at is not None and r.labeled_at < r.predicted_at
    ]
    if early:
        raise LeakageError(
            f"{len(early)} label(s) older than their prediction, e.g. {early[0]}: "
            "labels must come from events after the prediction"
        )
    labels = np.array([r.label for r in rows], dtype=float)
    # Equality only counts beyond what the commonest label gives for free: with 2%
    # positives, a rare 0/1 flag equals the label in ~97% of rows without leaking anything.
    _, counts = np.unique(labels, return_counts=True)
    baseline = float(counts.max() / counts.sum()) if len(labels) else 0.0
    equal_bar = max(LEAK_EQUAL_SHARE, baseline + (1.0 - baseline) / 2)
    checked: dict[str, Any] = {}
    if columns is None:
        columns = numeric_columns(rows, feature_names)
    for name in feature_names:
        x = columns.get(name)
        if x is None or not len(x):
            continue
        ok = ~np.isnan(x)
        if ok.sum() < 3:
            continue
        equal = float(np.mean(np.isclose(x[ok], labels[ok])))
        corr = 0.0
        if np.std(x[ok]) > 0 and np.std(labels[ok]) > 0:
            corr = float(np.corrcoef(x[ok], labels[ok])[0, 1])
        checked[name] = {"correlation": round(corr, 4), "equal_share": round(equal, 4)}
        if abs(corr) >= LEAK_CORRELATION or equal >= equal_bar:
            raise LeakageError(
                f"feature {name!r} is a near copy of the label (correlation {corr:.3f}, "
                f"equal in {equal:.0%} of rows): it must not be an input"
            )
    return checked


def temporal_split(rows: Sequence[Row], validation_share: float, recent_seconds: float) -> Split:
    """Oldest rows train, newer rows validate, the most recent span is its own slice."""
    ordered = sorted(rows, key=lambda r: (r.predicted_at, r.prediction_id))
    recent: list[Row] = []
    if recent_seconds > 0 and ordered:
        cut = ordered[-1].predicted_at - timedelta(seconds=recent_seconds)
        recent = [r for r in ordered if r.predicted_at > cut]
        ordered = [r for r in ordered if r.predicted_at <= cut]
    n_val = round(len(ordered) * validation_share)
    n_val = min(max(n_val, 1), max(len(ordered) - 1, 0)) if len(ordered) >= 2 else 0
    return Split(
        train=ordered[: len(ordered) - n_val],
        validation=ordered[len(ordered) - n_val :],
        recent=recent,
    )
