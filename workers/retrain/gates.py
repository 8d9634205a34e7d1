"""Gates a retrain must pass: data gates before training, model gates before promotion.

Pure functions, no I/O. Each gate returns a :class:`GateResult` with a pass/fail verdict,
every number the decision used and one readable sentence, so a refused retrain can be
explained without rerunning it. The same inputs always give the same verdict (the bootstrap
is seeded).

Gates are registered under string keys (``@gate("min_samples", stage="data")``); the
registration order is the evaluation order, so :func:`first_failure` names the most basic
problem. A gate that does not apply (class balance for regression, stability when it is
off, ...) is not run and returns nothing. An unknown key fails with the list of valid keys.

Data gates: ``min_samples``, ``class_balance``, ``positive_rate``, ``stability``.
Model gates: ``contract``, ``absolute``, ``improvement``, ``recent_window``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import NDArray

from workers.errors import ConfigError
from workers.retrain.scoring import THRESHOLD, improvement, score
from workers.settings import GatesConfig

Array = NDArray[np.float64]
Task = Literal["regression", "binary"]
Stage = Literal["data", "model"]
STAGES: tuple[Stage, ...] = ("data", "model")
Number = float | int | str | bool | None


# Results and views ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict.

    ``numbers`` holds every value the decision used (observed values, bounds, counts,
    interval ends) as plain Python values; undefined or non-finite values are ``None`` so
    the result serialises to strict JSON.
    """

    name: str
    passed: bool
    numbers: dict[str, Number]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "reason": self.reason,
            "numbers": dict(self.numbers),
        }


@dataclass(frozen=True, kw_only=True)
class DataView:
    """What data gates see, before training.

    Keyword-only because several fields are same-shaped arrays that must not be swapped.
    ``labels`` for binary tasks are 1.0/0.0 (``>= 0.5`` is positive); ``features`` are
    numeric columns with NaN for missing values.
    """

    task: Task
    labels: Array
    predicted_at: Array
    features: Mapping[str, Array]

    def __post_init__(self) -> None:
        n = _length("labels", self.labels)
        _same_length("predicted_at", self.predicted_at, n)
        if not np.all(np.isfinite(np.asarray(self.predicted_at, dtype=float))):
            raise ValueError("predicted_at must be finite POSIX seconds")
        for name, column in self.features.items():
            _same_length(f"feature {name!r}", column, n)


@dataclass(frozen=True, kw_only=True)
class ModelView:
    """What model gates see, after training: all predictions on the same evaluation rows.

    ``champion_eval`` is None when there is no champion yet. The ``recent_*`` arrays are the
    most recent slice (None when not configured or empty); ``champion_recent`` is None when
    there is no champion. ``contract_features`` may be empty: no declared contract.
    """

    task: Task
    metric: str
    eval_labels: Array
    candidate_eval: Array
    champion_eval: Array | None
    recent_labels: Array | None
    candidate_recent: Array | None
    champion_recent: Array | None
    contract_features: tuple[str, ...]
    candidate_features: tuple[str, ...]
    contract_task: str
    candidate_task: str

    def __post_init__(self) -> None:
        n = _length("eval_labels", self.eval_labels)
        if n == 0:
            raise ValueError("model gates need at least one evaluation row")
        _same_length("candidate_eval", self.candidate_eval, n)
        if self.champion_eval is not None:
            _same_length("champion_eval", self.champion_eval, n)
        if (self.recent_labels is None) != (self.candidate_recent is None):
            raise ValueError("recent_labels and candidate_recent are given together or not at all")
        if self.recent_labels is not None:
            m = _length("recent_labels", self.recent_labels)
            _same_length("candidate_recent", self.candidate_recent, m)
            if self.champion_recent is not None:
                _same_length("champion_recent", self.champion_recent, m)


def _length(name: str, values: Array) -> int:
    if np.ndim(values) != 1:
        raise ValueError(f"{name} must be one-dimensional")
    return len(values)


def _same_length(name: str, values: Array | None, n: int) -> None:
    if values is None or _length(name, values) != n:
        raise ValueError(f"{name} must have {n} values like the labels")


# Registry ------------------------------------------------------------------------------------

DataGate = Callable[[DataView, GatesConfig], GateResult | None]
ModelGate = Callable[[ModelView, GatesConfig, int], GateResult | None]
"""Model gates take the bootstrap seed as their third argument."""


@dataclass(frozen=True)
class GateInfo:
    """A registered gate as the orchestrator reports it."""

    name: str
    stage: Stage
    summary: str


_INFO: dict[str, GateInfo] = {}
_DATA: dict[str, DataGate] = {}
_MODEL: dict[str, ModelGate] = {}
GATES: Mapping[str, GateInfo] = MappingProxyType(_INFO)
"""Every registered gate by name, in evaluation order (read-only)."""


@overload
def gate(name: str, *, stage: Literal["data"]) -> Callable[[DataGate], DataGate]: ...
@overload
def gate(name: str, *, stage: Literal["model"]) -> Callable[[ModelGate], ModelGate]: ...
def gate(name: str, *, stage: Stage) -> Callable[[Any], Any]:
    """Register a gate under ``name``; names are unique across stages."""
    if stage not in STAGES:
        raise ValueError(f"gate {name!r}: stage must be one of {STAGES}, got {stage!r}")
    if name in _INFO:
        raise ValueError(f"gate {name!r} is already registered")

    def decorator(fn: Any) -> Any:
        (_DATA if stage == "data" else _MODEL)[name] = fn
        doc = (fn.__doc__ or "").strip().splitlines()
        _INFO[name] = GateInfo(name=name, stage=stage, summary=doc[0] if doc else "")
        return fn

    return decorator


def gate_names(stage: Stage | None = None) -> list[str]:
    """Registered gate names in evaluation order, for one stage or (None) both."""
    if stage is not None and stage not in STAGES:
        raise ConfigError(f"unknown gate stage {stage!r}; valid: {', '.join(STAGES)}")
    return [info.name for info in _INFO.values() if stage is None or info.stage == stage]


def get_gate(name: str) -> GateInfo:
    """The gate registered as ``name``.

    Raises
    ------
    ConfigError
        When ``name`` is unknown; the message lists the valid names.
    """
    try:
        return _INFO[name]
    except KeyError:
        raise ConfigError(f"unknown gate {name!r}; valid: {', '.join(gate_names())}") from None


def data_gates(view: DataView, cfg: GatesConfig) -> list[GateResult]:
    """Run every data gate that applies, in order; all of them run, for a full report."""
    return [r for fn in _DATA.values() if (r := fn(view, cfg)) is not None]


def model_gates(view: ModelView, cfg: GatesConfig, *, seed: int = 7) -> list[GateResult]:
    """Run every model gate that applies, in order; ``seed`` fixes the bootstrap."""
    return [r for fn in _MODEL.values() if (r := fn(view, cfg, seed)) is not None]


def model_gate(name: str, view: ModelView, cfg: GatesConfig, *, seed: int = 7) -> GateResult:
    """Run one model gate by name (it must apply to ``view``)."""
    if get_gate(name).stage != "model":
        raise ConfigError(f"{name!r} is a data gate")
    result = _MODEL[name](view, cfg, seed)
    if result is None:
        raise ValueError(f"gate {name!r} does not apply here")
    return result


def all_passed(results: Iterable[GateResult]) -> bool:
    """True when no gate failed (an empty list passes: nothing applied)."""
    return all(r.passed for r in results)


def first_failure(results: Iterable[GateResult]) -> GateResult | None:
    """The first failed gate in evaluation order, the most basic reason to refuse."""
    return next((r for r in results if not r.passed), None)


# Helpers -------------------------------------------------------------------------------------


def _clean(value: object) -> Number:
    """Plain Python values; NaN and infinities become None (undefined, strict JSON)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    raise TypeError(f"gate numbers must be plain values, got {type(value).__name__}")


def _result(name: str, passed: bool, numbers: Mapping[str, Any], reason: str) -> GateResult:
    return GateResult(
        name=name,
        passed=bool(passed),
        numbers={k: _clean(v) for k, v in numbers.items()},
        reason=reason,
    )


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _pct(x: float) -> str:
    return f"{x:.2%}"


def _positive(labels: Array) -> NDArray[np.bool_]:
    return np.asarray(labels, dtype=float) >= THRESHOLD


# Data gates ----------------------------------------------------------------------------------


@gate("min_samples", stage="data")
def _min_samples(view: DataView, cfg: GatesConfig) -> GateResult:
    """Enough labelled rows to train and evaluate on."""
    n = len(view.labels)
    passed = n >= cfg.min_samples
    sign = ">=" if passed else "<"
    return _result(
        "min_samples",
        passed,
        {"samples": n, "min_samples": cfg.min_samples},
        f"samples {n} {sign} {cfg.min_samples} required",
    )


@gate("class_balance", stage="data")
def _class_balance(view: DataView, cfg: GatesConfig) -> GateResult | None:
    """Enough positives and negatives that the model learns both classes."""
    if view.task != "binary" or (cfg.min_positives == 0 and cfg.min_negatives == 0):
        return None
    positives = int(_positive(view.labels).sum())
    negatives = len(view.labels) - positives
    checks = [
        ("positives", positives, cfg.min_positives),
        ("negatives", negatives, cfg.min_negatives),
    ]
    short = [f"{what} {got} < {need} required" for what, got, need in checks if got < need]
    reason = (
        " and ".join(short)
        if short
        else " and ".join(f"{what} {got} >= {need}" for what, got, need in checks)
    )
    return _result(
        "class_balance",
        not short,
        {
            "positives": positives,
            "negatives": negatives,
            "min_positives": cfg.min_positives,
            "min_negatives": cfg.min_negatives,
        },
        reason,
    )


@gate("positive_rate", stage="data")
def _positive_rate(view: DataView, cfg: GatesConfig) -> GateResult | None:
    """A positive rate in the expected range; outside it the labels are likely broken."""
    if view.task != "binary" or cfg.positive_rate is None:
        return None
    low, high = cfg.positive_rate
    n = len(view.labels)
    positives = int(_positive(view.labels).sum())
    numbers: dict[str, Any] = {"positives": positives, "samples": n, "low": low, "high": high}
    if n == 0:
        return _result("positive_rate", False, numbers | {"positive_rate": None}, "no rows")
    rate = positives / n
    passed = low <= rate <= high
    where = "inside" if passed else "outside"
    return _result(
        "positive_rate",
        passed,
        numbers | {"positive_rate": rate},
        f"positive rate {_pct(rate)} ({positives}/{n}) {where} [{_pct(low)}, {_pct(high)}]",
    )


def _direction(task: Task, x: Array, y: Array, min_rows: int) -> int | None:
    """Sign of a feature's effect on the label in one bucket; None when it has none.

    Binary: sign of mean(x | positive) - mean(x | negative). Regression: sign of the
    covariance, which is the sign of the Pearson correlation. Constant columns and columns
    with fewer than ``min_rows`` present values have no direction.
    """
    present = np.isfinite(x)
    x, y = x[present], y[present]
    if len(x) < min_rows or x.min() == x.max():
        return None
    if task == "binary":
        pos = y >= THRESHOLD
        if pos.all() or not pos.any():
            return None
        return int(np.sign(x[pos].mean() - x[~pos].mean()))
    if y.min() == y.max():
        return None
    return int(np.sign(np.mean((x - x.mean()) * (y - y.mean()))))


@gate("stability", stage="data")
def _stability(view: DataView, cfg: GatesConfig) -> GateResult | None:
    """Each feature's effect points the same way across time buckets (market regimes).

    A relationship that flips between periods is one the model should not learn from. A
    feature is judged when it has a direction in at least ``min_buckets`` usable buckets;
    its agreement is the share of those buckets with the majority sign (zero counts as
    disagreement).
    """
    st = cfg.stability
    if not st.enabled:
        return None
    labels = np.asarray(view.labels, dtype=float)
    times = np.asarray(view.predicted_at, dtype=float)
    ids = (
        np.floor((times - times.min()) / st.bucket_seconds).astype(np.int64)
        if len(times)
        else np.zeros(0, dtype=np.int64)
    )
    seen = np.unique(ids)
    usable: list[NDArray[np.bool_]] = []
    for b in seen:
        rows = ids == b
        if rows.sum() < st.min_bucket_samples:
            continue
        if view.task == "binary":
            pos = _positive(labels[rows])
            if pos.all() or not pos.any():
                continue
        usable.append(rows)
    numbers: dict[str, Any] = {
        "buckets": len(usable),
        "buckets_seen": len(seen),
        "min_buckets": st.min_buckets,
        "min_bucket_samples": st.min_bucket_samples,
        "bucket_seconds": st.bucket_seconds,
        "min_agreement": st.min_agreement,
    }
    if len(usable) < st.min_buckets:
        needs = "rows and both classes" if view.task == "binary" else "rows"
        return _result(
            "stability",
            False,
            numbers,
            f"usable buckets {len(usable)} < {st.min_buckets} required "
            f"({len(seen)} buckets seen; each needs {st.min_bucket_samples}+ {needs})",
        )

    agreements: dict[str, float] = {}
    for name in sorted(view.features):
        column = np.asarray(view.features[name], dtype=float)
        signs = [
            s
            for rows in usable
            if (s := _direction(view.task, column[rows], labels[rows], st.min_bucket_samples))
            is not None
        ]
        if len(signs) < st.min_buckets:
            numbers[f"agreement.{name}"] = None
            continue
        up, down = signs.count(1), signs.count(-1)
        agreements[name] = max(up, down) / len(signs)
        numbers[f"agreement.{name}"] = agreements[name]
        numbers[f"direction.{name}"] = (up > down) - (up < down)
        numbers[f"buckets.{name}"] = len(signs)
    numbers["features_judged"] = len(agreements)
    if not agreements:
        numbers |= {"worst_feature": None, "worst_agreement": None}
        return _result(
            "stability",
            True,
            numbers,
            f"no feature has a direction in {st.min_buckets}+ of {len(usable)} buckets",
        )
    worst = min(agreements, key=lambda f: (agreements[f], f))
    numbers |= {"worst_feature": worst, "worst_agreement": agreements[worst]}
    low = sorted(f for f, a in agreements.items() if a < st.min_agreement)
    if low:
        return _result(
            "stability",
            False,
            numbers,
            f"{len(low)} feature(s) agree in sign in < {_pct(st.min_agreement)} of buckets "
            f"(worst: {worst} {_pct(agreements[worst])} of {numbers[f'buckets.{worst}']} buckets): "
            f"{', '.join(low)}",
        )
    return _result(
        "stability",
        True,
        numbers,
        f"all {len(agreements)} feature(s) agree in sign in >= {_pct(st.min_agreement)} "
        f"of {len(usable)} buckets (worst: {worst} {_pct(agreements[worst])})",
    )


# Model gates ---------------------------------------------------------------------------------


@gate("contract", stage="model")
def _contract(view: ModelView, cfg: GatesConfig, seed: int) -> GateResult | None:
    """The candidate serves what producers send: the same task and the declared features."""
    if not cfg.contract:
        return None
    task_ok = view.candidate_task == view.contract_task
    declared = set(view.contract_features)
    trained = set(view.candidate_features)
    missing = sorted(declared - trained) if declared else []
    extra = sorted(trained - declared) if declared else []
    problems = []
    if not task_ok:
        problems.append(f"candidate task {view.candidate_task} != contract {view.contract_task}")
    if missing:
        problems.append(f"missing features: {', '.join(missing)}")
    if extra:
        problems.append(f"extra features: {', '.join(extra)}")
    if problems:
        reason = "; ".join(problems)
    elif declared:
        reason = f"task {view.candidate_task} and all {len(declared)} declared features match"
    else:
        reason = f"task {view.candidate_task} matches; no feature contract declared"
    return _result(
        "contract",
        not problems,
        {
            "contract_task": view.contract_task,
            "candidate_task": view.candidate_task,
            "contract_features": len(declared),
            "candidate_features": len(trained),
            "missing_count": len(missing),
            "extra_count": len(extra),
            "missing": ",".join(missing),
            "extra": ",".join(extra),
        },
        reason,
    )


@gate("absolute", stage="model")
def _absolute(view: ModelView, cfg: GatesConfig, seed: int) -> GateResult | None:
    """A bar the candidate must clear on its own, whatever the champion does."""
    bar = cfg.absolute
    if bar is None:
        return None
    value = score(bar.metric, view.eval_labels, view.candidate_eval)
    numbers: dict[str, Any] = {"metric": bar.metric, "value": value, "min": bar.min}
    numbers |= {"max": bar.max, "samples": len(view.eval_labels)}
    if not math.isfinite(value):
        return _result(
            "absolute",
            False,
            numbers,
            f"candidate {bar.metric} is undefined on {len(view.eval_labels)} evaluation rows",
        )
    short = []
    if bar.min is not None and value < bar.min:
        short.append(f"candidate {bar.metric} {_fmt(value)} < {_fmt(bar.min)} minimum")
    if bar.max is not None and value > bar.max:
        short.append(f"candidate {bar.metric} {_fmt(value)} > {_fmt(bar.max)} maximum")
    if short:
        reason = " and ".join(short)
    else:
        bounds = [f">= {_fmt(bar.min)}" if bar.min is not None else ""]
        bounds.append(f"<= {_fmt(bar.max)}" if bar.max is not None else "")
        shown = " and ".join(b for b in bounds if b) or "no bound set"
        reason = f"candidate {bar.metric} {_fmt(value)} meets {shown}"
    return _result("absolute", not short, numbers, reason)


def _bootstrap(
    metric: str, labels: Array, candidate: Array, champion: Array, resamples: int, seed: int
) -> Array:
    """Relative improvement on ``resamples`` resamples of the rows (NaN where undefined)."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    out = np.empty(resamples, dtype=np.float64)
    for i in range(resamples):
        idx = rng.integers(0, n, size=n)
        cand = score(metric, labels[idx], candidate[idx])
        champ = score(metric, labels[idx], champion[idx])
        out[i] = improvement(metric, cand, champ)
    return out


@gate("improvement", stage="model")
def _improvement(view: ModelView, cfg: GatesConfig, seed: int) -> GateResult:
    """Beat the champion by a floor, so promotions are worth their churn.

    The interval is a percentile bootstrap over the evaluation rows; with
    ``require_significant`` its lower end, not the point estimate, must clear the floor.
    """
    metric, floor = view.metric, cfg.min_improvement
    labels = np.asarray(view.eval_labels, dtype=float)
    candidate = np.asarray(view.candidate_eval, dtype=float)
    cand = score(metric, labels, candidate)
    numbers: dict[str, Any] = {"metric": metric, "candidate": cand, "min_improvement": floor}
    if view.champion_eval is None:
        return _result("improvement", True, numbers, "no champion yet: nothing to beat")
    champion = np.asarray(view.champion_eval, dtype=float)
    champ = score(metric, labels, champion)
    point = improvement(metric, cand, champ)
    numbers |= {
        "champion": champ,
        "improvement": point,
        "interval_low": None,
        "interval_high": None,
        "confidence": cfg.improvement_confidence,
        "resamples": cfg.bootstrap_resamples,
        "resamples_used": 0,
        "require_significant": cfg.require_significant,
        "samples": len(labels),
    }
    low: float | None = None
    interval = ""
    if cfg.bootstrap_resamples > 0:
        draws = _bootstrap(metric, labels, candidate, champion, cfg.bootstrap_resamples, seed)
        draws = draws[np.isfinite(draws)]
        numbers["resamples_used"] = len(draws)
        if len(draws):
            tail = (1 - cfg.improvement_confidence) / 2
            low, high = (float(q) for q in np.quantile(draws, [tail, 1 - tail]))
            numbers |= {"interval_low": low, "interval_high": high}
            interval = f" ({_pct(cfg.improvement_confidence)} interval {_pct(low)} to {_pct(high)})"
    if not math.isfinite(point):
        return _result(
            "improvement",
            False,
            numbers,
            f"{metric} improvement is undefined (candidate {_fmt(cand)}, champion {_fmt(champ)})",
        )
    if cfg.require_significant:
        if low is None:
            why = "bootstrap_resamples is 0" if cfg.bootstrap_resamples == 0 else "none defined"
            return _result(
                "improvement",
                False,
                numbers,
                f"require_significant needs a bootstrap interval but {why} "
                f"(point estimate {_pct(point)})",
            )
        passed = low >= floor
        sign = ">=" if passed else "<"
        return _result(
            "improvement",
            passed,
            numbers,
            f"{metric} improvement interval low end {_pct(low)} {sign} {_pct(floor)} floor "
            f"(point estimate {_pct(point)}{interval})",
        )
    passed = point >= floor
    sign = ">=" if passed else "<"
    return _result(
        "improvement",
        passed,
        numbers,
        f"{metric} improvement {_pct(point)} {sign} {_pct(floor)} floor "
        f"(candidate {_fmt(cand)}, champion {_fmt(champ)}){interval}",
    )


@gate("recent_window", stage="model")
def _recent_window(view: ModelView, cfg: GatesConfig, seed: int) -> GateResult | None:
    """No worse than the champion on the newest rows: better on average can hide a regression
    on today's traffic."""
    tolerance = cfg.recent_regression_tolerance
    if (
        tolerance is None
        or view.recent_labels is None
        or view.candidate_recent is None
        or len(view.recent_labels) == 0
    ):
        return None
    metric = view.metric
    cand = score(metric, view.recent_labels, view.candidate_recent)
    numbers: dict[str, Any] = {
        "metric": metric,
        "candidate": cand,
        "tolerance": tolerance,
        "samples": len(view.recent_labels),
    }
    if view.champion_recent is None:
        return _result(
            "recent_window", True, numbers, "no champion yet: nothing to compare on recent rows"
        )
    champ = score(metric, view.recent_labels, view.champion_recent)
    change = improvement(metric, cand, champ)
    numbers |= {"champion": champ, "improvement": change}
    if not math.isfinite(change):
        return _result(
            "recent_window",
            False,
            numbers,
            f"recent {metric} cannot be compared (candidate {_fmt(cand)}, champion {_fmt(champ)})",
        )
    passed = change >= -tolerance
    verdict = "is within" if passed else "is worse than"
    return _result(
        "recent_window",
        passed,
        numbers,
        f"recent {metric} change {_pct(change)} vs the champion {verdict} the {_pct(tolerance)} "
        f"tolerance (candidate {_fmt(cand)}, champion {_fmt(champ)} on "
        f"{len(view.recent_labels)} rows)",
    )
