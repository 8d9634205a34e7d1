"""Drifting streams with known change points, for the drift-recovery benchmark and tests.

Pure: builds rows and labels in memory, sends nothing. Every scenario comes from River's
synthetic generators (``river.datasets.synth``) on the Friedman #1 problem: ten features
``x0`` … ``x9``, each uniform on [0, 1], and a target
``10 sin(pi x0 x1) + 20 (x2 - 0.5)^2 + 10 x3 + 5 x4`` plus Gaussian noise (sigma 1).
The inputs never change; only the concept (how the target depends on them) does, so a
change is visible in the errors, not in the input distributions.

======================  ==========================================================================
kind                    generator
======================  ==========================================================================
``stationary``          ``FriedmanDrift("gra")`` with both change points past the stream's end.
``abrupt``              ``FriedmanDrift("gra")``: at the onset the features swap roles
                        (``10 sin(pi x3 x5) + 20 (x1 - 0.5)^2 + 10 x0 + 5 x2``); its second change
                        point (the return) is past the stream's end.
``gradual``             ``ConceptDriftStream``: the initial concept, and the swapped one of
                        ``FriedmanDrift("gsg")``, mixed with a sigmoid share of the new concept:
                        1.8% at the declared onset, 50% at ``onset + transition``, 98.2% at
                        ``onset + 2 transition`` (``settled_at``).
``drift_back``          ``FriedmanDrift("gra")`` with both change points in the stream: the swapped
                        concept from the onset, the initial one again from ``return_at``.
``local``               ``FriedmanDrift("lea")`` with its three change points at ``onset``,
                        ``onset + 1`` and ``onset + 2``: from ``onset + 2`` on, the two largest
                        "local expanding" regions (``x1 < 0.3 and x2 < 0.3`` and
                        ``x1 > 0.7 and x2 > 0.7``, 18% of the input space) follow other functions;
                        the other 82% is unchanged.
======================  ==========================================================================

For ``task="binary"`` the same stream's target ``y`` becomes a probability,
``P(1) = 1 / (1 + exp((y - 10) / 1.5))``: a positive is an event with a low target, about a
quarter of them under the initial concept (and under the swapped one, whose target has the
same distribution). The label is drawn from that probability with a generator of its own.
The link is one-sided on purpose: in ``local``'s first region the target falls from about 13
to about 1, so that pocket of the input space turns from mostly negative to mostly positive
and the champion's log-loss there rises (with a link centred on the median both values would
sit on the negative side, and the champion's log-loss would barely move).

The initial champion (:meth:`DriftStream.fit_champion`) is the project's LightGBM learner
(``workers.retrain.models.fit_model`` with its defaults) fitted on 3,000 rows of the same
generator before its change points, drawn with a separate seed: what a team would have
trained before the stream started.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray
from river.datasets import synth

from workers.retrain.features import FeatureSpec
from workers.retrain.models import TrainedModel, fit_model

Kind = Literal["stationary", "abrupt", "gradual", "drift_back", "local"]
Task = Literal["regression", "binary"]
KINDS: tuple[Kind, ...] = get_args(Kind)
DRIFTING: tuple[Kind, ...] = tuple(k for k in KINDS if k != "stationary")
TASKS: tuple[Task, ...] = get_args(Task)

N_FEATURES = 10
FEATURES: tuple[str, ...] = tuple(f"x{i}" for i in range(N_FEATURES))
Row = dict[str, float]

BINARY_CENTER = 10.0  # about the 25th percentile of the target under the initial concept
BINARY_SCALE = 1.5
CHAMPION_ROWS = 3000
CHAMPION_KIND = "lightgbm"
_CHAMPION_SEED_OFFSET = 10_007  # the champion's rows never overlap the stream's
_LABEL_STREAM = 1  # sub-stream of the seed for binary labels


@dataclass(frozen=True)
class Champion:
    """The model that scored the stream before any retrain: a fitted project learner."""

    model: TrainedModel
    version: str = "initial"

    def score(self, features: Mapping[str, Any]) -> float:
        return float(self.model.predict([features])[0])

    def predict(self, rows: Sequence[Mapping[str, Any]]) -> NDArray[np.float64]:
        return self.model.predict(rows)


@dataclass(frozen=True)
class DriftStream:
    """One scenario's events in order: the features of each prediction and its true label.

    ``labels`` are what outcomes report: the target (regression) or a 0/1 draw (binary).
    ``truth`` is the noiseless-in-the-label quantity behind them: the target itself
    (regression) or the probability the label was drawn from (binary).
    """

    kind: Kind
    task: Task
    seed: int
    rows: tuple[Row, ...]
    labels: NDArray[np.float64]
    truth: NDArray[np.float64]
    onset: int | None  # first event of the new concept (gradual: where its share is 1.8%)
    return_at: int | None = None  # drift_back: first event of the initial concept again
    settled_at: int | None = None  # gradual: where the new concept's share reaches 98.2%
    transition: int = 0  # gradual: the sigmoid's width parameter

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def features(self) -> tuple[str, ...]:
        return FEATURES

    @property
    def change_points(self) -> tuple[int, ...]:
        """Where a concept begins: the onset, a gradual change's settling, the return."""
        points = (self.onset, self.settled_at, self.return_at)
        return tuple(p for p in points if p is not None)

    def drifted(self, index: int) -> bool:
        """Whether the concept at ``index`` differs (wholly or in part) from the initial one."""
        if self.onset is None or index < self.onset:
            return False
        return self.return_at is None or index < self.return_at

    def fit_champion(self, n_rows: int = CHAMPION_ROWS, seed: int | None = None) -> Champion:
        """The initial champion, fitted on ``n_rows`` rows of this generator before any
        change, drawn with a seed of their own (``seed``, default derived from the stream's)."""
        own = self.seed + _CHAMPION_SEED_OFFSET if seed is None else seed
        return Champion(_fit_initial(self.kind, self.task, n_rows, own))


# Generators ------------------------------------------------------------------------------------


def _never(n_events: int) -> int:
    """A change point no stream of ``n_events`` reaches."""
    return n_events + 1_000_000


def _gradual_width(n_events: int) -> int:
    return max(100, min(2000, n_events // 15))


def _dataset(
    kind: Kind,
    n_events: int,
    onset: int | None,
    return_at: int | None,
    transition: int,
    seed: int,
) -> Iterable[tuple[dict[Any, float], float]]:
    """River's generator for ``kind``, its change points at the given event indices."""
    start = _never(n_events) if onset is None else onset
    if kind in ("stationary", "abrupt", "drift_back"):
        back = start + _never(n_events) if return_at is None else return_at
        gen: Iterable[tuple[dict[Any, float], float]] = synth.FriedmanDrift(
            drift_type="gra", position=(start, back), seed=seed
        )
        return gen
    if kind == "local":
        # All three expansions at once: the largest local regions from start + 2 on.
        gen = synth.FriedmanDrift(
            drift_type="lea", position=(start, start + 1, start + 2), seed=seed
        )
        return gen
    if kind == "gradual":
        old = synth.FriedmanDrift(
            drift_type="gsg",
            position=(_never(n_events), _never(n_events) + 1),
            transition_window=0,
            seed=seed,
        )
        if onset is None:
            return old
        # Change point 0 with no transition: every row follows gsg's first new concept.
        new = synth.FriedmanDrift(
            drift_type="gsg", position=(0, _never(n_events)), transition_window=0, seed=seed + 1
        )
        # ConceptDriftStream counts from 1 and its share is 1/(1+exp(-4 (i - position)/width)):
        # 1.8% one width before the position, 98.2% one width after.
        mixed: Iterable[tuple[dict[Any, float], float]] = synth.ConceptDriftStream(
            stream=old,
            drift_stream=new,
            position=start + transition + 1,
            width=transition,
            seed=seed + 2,
        )
        return mixed
    raise ValueError(f"unknown drift kind {kind!r}; valid: {', '.join(KINDS)}")


def _rows(pairs: Iterator[tuple[dict[Any, float], float]], n: int) -> tuple[list[Row], list[float]]:
    rows: list[Row] = []
    targets: list[float] = []
    for x, y in itertools.islice(pairs, n):
        rows.append({FEATURES[int(k)]: float(v) for k, v in x.items()})
        targets.append(float(y))
    if len(rows) != n:
        raise RuntimeError(f"the generator stopped after {len(rows)} of {n} rows")
    return rows, targets


def _probability(targets: NDArray[np.float64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = 1.0 / (1.0 + np.exp((targets - BINARY_CENTER) / BINARY_SCALE))
    return out


def _labels(task: Task, targets: list[float], seed: int) -> tuple[NDArray[Any], NDArray[Any]]:
    y = np.asarray(targets, dtype=np.float64)
    if task == "regression":
        return y, y
    p = _probability(y)
    draws = np.random.default_rng([seed, _LABEL_STREAM]).random(len(p))
    return (draws < p).astype(np.float64), p


def _check(kind: str, task: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown drift kind {kind!r}; valid: {', '.join(KINDS)}")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")


def make_stream(
    kind: Kind,
    task: Task,
    n_events: int,
    *,
    onset_share: float = 0.5,
    return_share: float | None = None,
    transition: int | None = None,
    seed: int = 7,
) -> DriftStream:
    """A stream of ``n_events`` events whose concept changes as ``kind`` says.

    ``onset_share``: where the change begins, as a share of the stream. ``return_share``
    (drift_back only): where the initial concept comes back; default half way between the
    onset and the end. ``transition`` (gradual only): the sigmoid's width in events; default
    ``n_events // 15`` within [100, 2000], so the change takes two widths to settle.
    The same arguments always give the same stream.
    """
    _check(kind, task)
    if n_events < 10:
        raise ValueError(f"n_events must be at least 10, got {n_events}")
    if not 0 < onset_share < 1:
        raise ValueError(f"onset_share must lie in (0, 1), got {onset_share}")
    onset: int | None = None if kind == "stationary" else round(onset_share * n_events)
    return_at: int | None = None
    settled_at: int | None = None
    width = 0
    if kind == "drift_back":
        assert onset is not None
        share = return_share if return_share is not None else (1 + onset_share) / 2
        if not onset_share < share < 1:
            raise ValueError(f"return_share must lie in ({onset_share}, 1), got {share}")
        return_at = round(share * n_events)
        if not onset < return_at < n_events:
            raise ValueError(f"{n_events} events leave no room to drift and come back")
    if kind == "gradual":
        assert onset is not None
        width = transition if transition is not None else _gradual_width(n_events)
        if width < 1:
            raise ValueError(f"transition must be at least 1, got {width}")
        if onset / width > 170:
            # ConceptDriftStream's sigmoid overflows a float this far before its centre.
            raise ValueError(f"transition {width} is too short for an onset at event {onset}")
        settled_at = onset + 2 * width
    pairs = iter(_dataset(kind, n_events, onset, return_at, width, seed))
    rows, targets = _rows(pairs, n_events)
    labels, truth = _labels(task, targets, seed)
    return DriftStream(
        kind=kind,
        task=task,
        seed=seed,
        rows=tuple(rows),
        labels=labels,
        truth=truth,
        onset=onset,
        return_at=return_at,
        settled_at=settled_at,
        transition=width,
    )


@lru_cache(maxsize=32)
def _fit_initial(kind: Kind, task: Task, n_rows: int, seed: int) -> TrainedModel:
    """The initial concept's rows (every change point past them) and a model fitted on them.
    Cached: every scenario of a task and seed gets the same champion without refitting."""
    pairs = iter(_dataset(kind, n_rows, None, None, _gradual_width(n_rows), seed))
    rows, targets = _rows(pairs, n_rows)
    labels, _ = _labels(task, targets, seed)
    spec = FeatureSpec.infer(FEATURES, rows)
    return fit_model(CHAMPION_KIND, task, spec, rows, labels, seed=seed % 2**31)


def initial_concept_error(stream: DriftStream, champion: Champion) -> tuple[float, float]:
    """The champion's mean error (absolute for regression, log-loss for binary) before the
    onset and after it (until a return): a quick check that the concept really moved."""
    pred = champion.predict(stream.rows)
    if stream.task == "regression":
        err = np.abs(pred - stream.labels)
    else:
        p = np.clip(pred, 1e-15, 1 - 1e-15)
        y = stream.labels
        err = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    split = stream.onset if stream.onset is not None else len(stream) // 2
    end = stream.return_at if stream.return_at is not None else len(stream)
    before, after = err[:split], err[split:end]
    return float(before.mean()), float(after.mean()) if len(after) else math.nan
