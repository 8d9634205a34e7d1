"""Retrain gates: each passes and fails on purpose-built data with the numbers it reports."""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pytest
from numpy.typing import NDArray

from workers.errors import ConfigError
from workers.retrain.gates import (
    GATES,
    DataView,
    GateResult,
    ModelView,
    all_passed,
    data_gates,
    first_failure,
    gate,
    gate_names,
    get_gate,
    model_gates,
)
from workers.settings import AbsoluteGate, GatesConfig, StabilityGate

SIX_MONTHS = 15_552_000.0
T0 = 1_577_836_800.0  # 2020-01-01T00:00:00Z
Array = NDArray[np.float64]


def by_name(results: list[GateResult]) -> dict[str, GateResult]:
    return {r.name: r for r in results}


def data_view(
    labels: Array,
    *,
    task: str = "binary",
    times: Array | None = None,
    features: Mapping[str, Array] | None = None,
) -> DataView:
    times = np.full(len(labels), T0) if times is None else times
    return DataView(
        task=task,  # type: ignore[arg-type]
        labels=np.asarray(labels, dtype=float),
        predicted_at=times,
        features=dict(features or {}),
    )


def counts(positives: int, negatives: int) -> Array:
    return np.concatenate([np.ones(positives), np.zeros(negatives)])


# min_samples, class_balance, positive_rate ---------------------------------------------------


def test_min_samples_passes_and_fails_with_the_count() -> None:
    cfg = GatesConfig(min_samples=50)
    ok = by_name(data_gates(data_view(np.zeros(50), task="regression"), cfg))["min_samples"]
    short = by_name(data_gates(data_view(np.zeros(30), task="regression"), cfg))["min_samples"]
    assert ok.passed
    assert ok.numbers == {"samples": 50, "min_samples": 50}
    assert not short.passed
    assert short.numbers == {"samples": 30, "min_samples": 50}
    assert short.reason == "samples 30 < 50 required"


def test_seed_example_passes_class_balance_and_positive_rate() -> None:
    cfg = GatesConfig(min_positives=200, min_negatives=200, positive_rate=(0.02, 0.5))
    results = data_gates(data_view(counts(547, 4911)), cfg)
    assert [r.name for r in results] == ["min_samples", "class_balance", "positive_rate"]
    assert all_passed(results)
    got = by_name(results)
    assert got["class_balance"].numbers == {
        "positives": 547,
        "negatives": 4911,
        "min_positives": 200,
        "min_negatives": 200,
    }
    assert got["positive_rate"].numbers["positive_rate"] == pytest.approx(547 / 5458)
    assert got["positive_rate"].numbers["low"] == 0.02
    assert got["positive_rate"].numbers["high"] == 0.5


def test_class_balance_fails_on_too_few_positives() -> None:
    cfg = GatesConfig(min_positives=200, min_negatives=200)
    result = by_name(data_gates(data_view(counts(150, 4000)), cfg))["class_balance"]
    assert not result.passed
    assert result.numbers["positives"] == 150
    assert result.numbers["min_positives"] == 200
    assert result.reason == "positives 150 < 200 required"


def test_class_balance_reports_both_shortfalls() -> None:
    cfg = GatesConfig(min_positives=200, min_negatives=200)
    result = by_name(data_gates(data_view(counts(150, 120)), cfg))["class_balance"]
    assert not result.passed
    assert result.numbers["negatives"] == 120
    assert result.reason == "positives 150 < 200 required and negatives 120 < 200 required"


def test_binary_labels_split_at_one_half() -> None:
    labels = np.array([0.5, 0.49, 1.0, 0.0])
    cfg = GatesConfig(min_samples=1, min_positives=1)
    result = by_name(data_gates(data_view(labels), cfg))["class_balance"]
    assert result.numbers["positives"] == 2
    assert result.numbers["negatives"] == 2


@pytest.mark.parametrize(
    ("positives", "negatives", "shown"),
    [(10, 990, "1.00%"), (600, 400, "60.00%")],
)
def test_positive_rate_fails_outside_the_range(positives: int, negatives: int, shown: str) -> None:
    cfg = GatesConfig(positive_rate=(0.02, 0.5))
    result = by_name(data_gates(data_view(counts(positives, negatives)), cfg))["positive_rate"]
    assert not result.passed
    assert result.numbers["positive_rate"] == pytest.approx(positives / 1000)
    assert shown in result.reason
    assert "outside [2.00%, 50.00%]" in result.reason


def test_gates_that_do_not_apply_are_not_returned() -> None:
    cfg = GatesConfig(min_positives=200, min_negatives=200, positive_rate=(0.02, 0.5))
    regression = data_gates(data_view(np.zeros(100), task="regression"), cfg)
    assert [r.name for r in regression] == ["min_samples"]
    unconfigured = data_gates(data_view(counts(50, 50)), GatesConfig())
    assert [r.name for r in unconfigured] == ["min_samples"]


# stability -----------------------------------------------------------------------------------

STABLE = GatesConfig(min_samples=1, stability=StabilityGate(enabled=True))


def bucketed(
    buckets: int, effects: list[float], rows: int = 200, seed: int = 0
) -> tuple[Array, Array, Array]:
    """Labels, times and one feature over ``buckets`` half-years; ``effects[b]`` is the shift
    of the feature for positives in bucket b (negative flips the direction)."""
    rng = np.random.default_rng(seed)
    labels = np.tile((np.arange(rows) % 5 == 0).astype(float), buckets)
    offsets = np.linspace(0.0, SIX_MONTHS * 0.99, rows)
    times = np.concatenate([T0 + b * SIX_MONTHS + offsets for b in range(buckets)])
    shift = np.repeat(np.asarray(effects, dtype=float), rows) * labels
    feature = rng.normal(size=buckets * rows) + shift
    return labels, times, feature


def stability(view: DataView, cfg: GatesConfig = STABLE) -> GateResult:
    return by_name(data_gates(view, cfg))["stability"]


def test_stability_passes_when_the_effect_is_consistent() -> None:
    labels, times, visits = bucketed(6, [1.0] * 6)
    const = np.full(len(labels), 3.0)
    result = stability(data_view(labels, times=times, features={"visits": visits, "c": const}))
    assert result.passed
    assert result.numbers["buckets"] == 6
    assert result.numbers["agreement.visits"] == 1.0
    assert result.numbers["direction.visits"] == 1
    assert result.numbers["agreement.c"] is None  # constant: no direction, not judged
    assert result.numbers["worst_feature"] == "visits"
    assert result.numbers["features_judged"] == 1


def test_stability_fails_when_the_effect_flips_in_half_the_buckets() -> None:
    labels, times, visits = bucketed(6, [1.0, -1.0] * 3)
    result = stability(data_view(labels, times=times, features={"visits": visits}))
    assert not result.passed
    assert result.numbers["agreement.visits"] == 0.5
    assert result.numbers["worst_feature"] == "visits"
    assert result.numbers["worst_agreement"] == 0.5
    assert "visits 50.00% of 6" in result.reason


def test_stability_tolerates_one_flip_in_six() -> None:
    labels, times, visits = bucketed(6, [1.0, 1.0, -1.0, 1.0, 1.0, 1.0])
    result = stability(data_view(labels, times=times, features={"visits": visits}))
    assert result.passed
    assert result.numbers["agreement.visits"] == pytest.approx(5 / 6)


def test_stability_counts_zero_effects_as_disagreement() -> None:
    labels, times, _ = bucketed(6, [0.0] * 6)
    # Same two values for both classes in buckets 0 and 1: exactly equal means, zero sign.
    tie = np.tile(np.array([1.0, 3.0]), len(labels) // 2)
    clear = tie + labels
    feature = np.where(times < T0 + 2 * SIX_MONTHS, tie, clear)
    result = stability(data_view(labels, times=times, features={"f": feature}))
    assert not result.passed
    assert result.numbers["agreement.f"] == pytest.approx(4 / 6)


def test_stability_fails_with_too_few_buckets() -> None:
    labels, times, visits = bucketed(3, [1.0] * 3)
    result = stability(data_view(labels, times=times, features={"visits": visits}))
    assert not result.passed
    assert result.numbers["buckets"] == 3
    assert result.numbers["min_buckets"] == 4
    assert "usable buckets 3 < 4 required" in result.reason


def test_stability_ignores_buckets_with_one_class_or_few_rows() -> None:
    labels, times, visits = bucketed(6, [1.0] * 6)
    labels[200:400] = 0.0  # bucket 1: negatives only
    keep = np.ones(len(labels), dtype=bool)
    keep[400 + 10 : 600] = False  # bucket 2: 10 rows left
    view = data_view(labels[keep], times=times[keep], features={"visits": visits[keep]})
    result = stability(view)
    assert result.numbers["buckets_seen"] == 6
    assert result.numbers["buckets"] == 4
    assert result.passed


def test_stability_uses_correlation_for_regression() -> None:
    rng = np.random.default_rng(3)
    n = 6 * 100
    times = T0 + np.repeat(np.arange(6), 100).astype(np.float64) * SIX_MONTHS
    x = rng.normal(size=n)
    sign = np.where(np.repeat(np.arange(6), 100) < 3, 1.0, -1.0)
    steady = x + 0.5 * rng.normal(size=n)
    flipping = sign * x + 0.5 * rng.normal(size=n)
    cfg = STABLE.model_copy(update={"stability": StabilityGate(enabled=True, min_agreement=0.8)})
    steady_view = data_view(steady, task="regression", times=times, features={"x": x})
    flip_view = data_view(flipping, task="regression", times=times, features={"x": x})
    kept = stability(steady_view, cfg)
    assert kept.passed
    assert kept.numbers["agreement.x"] == 1.0
    flipped = stability(flip_view, cfg)
    assert not flipped.passed
    assert flipped.numbers["agreement.x"] == 0.5


def test_stability_is_not_run_unless_enabled() -> None:
    labels, times, visits = bucketed(6, [1.0] * 6)
    view = data_view(labels, times=times, features={"visits": visits})
    assert "stability" not in by_name(data_gates(view, GatesConfig()))


# Model gates ---------------------------------------------------------------------------------


def model_view(
    labels: Array,
    candidate: Array,
    champion: Array | None,
    *,
    metric: str = "mae",
    task: str = "regression",
    recent: tuple[Array, Array, Array | None] | None = None,
    contract_features: tuple[str, ...] = ("a", "b"),
    candidate_features: tuple[str, ...] = ("b", "a"),
    candidate_task: str | None = None,
) -> ModelView:
    return ModelView(
        task=task,  # type: ignore[arg-type]
        metric=metric,
        eval_labels=labels,
        candidate_eval=candidate,
        champion_eval=champion,
        recent_labels=None if recent is None else recent[0],
        candidate_recent=None if recent is None else recent[1],
        champion_recent=None if recent is None else recent[2],
        contract_features=contract_features,
        candidate_features=candidate_features,
        contract_task=task,
        candidate_task=candidate_task or task,
    )


def regression_pair(scale: float, noise: float, n: int = 1000, seed: int = 1) -> tuple[Array, ...]:
    """Labels, candidate and champion whose candidate errors are ``scale`` times the
    champion's on average, each row jittered by up to ``noise`` (relative, mean one)."""
    rng = np.random.default_rng(seed)
    labels = rng.normal(size=n)
    errors = rng.normal(size=n)
    jitter = 1.0 + noise * rng.uniform(-1.0, 1.0, size=n)
    return labels, labels + scale * errors * jitter, labels + errors


def improvement(view: ModelView, cfg: GatesConfig, seed: int = 7) -> GateResult:
    return by_name(model_gates(view, cfg, seed=seed))["improvement"]


FLOOR = GatesConfig(min_improvement=0.02)


def test_clearly_better_candidate_passes_with_a_positive_interval() -> None:
    result = improvement(model_view(*regression_pair(0.6, 0.3)), FLOOR)
    n = result.numbers
    assert result.passed
    assert isinstance(n["improvement"], float)
    assert n["improvement"] == pytest.approx(0.4, abs=0.05)
    assert isinstance(n["interval_low"], float) and isinstance(n["interval_high"], float)
    assert 0.02 < n["interval_low"] < n["improvement"] < n["interval_high"]
    assert n["candidate"] < n["champion"]  # type: ignore[operator]
    assert n["min_improvement"] == 0.02
    assert n["resamples"] == 200
    assert n["resamples_used"] == 200


def test_worse_candidate_fails_with_the_shortfall() -> None:
    result = improvement(model_view(*regression_pair(1.3, 0.3)), FLOOR)
    assert not result.passed
    assert result.numbers["improvement"] < 0  # type: ignore[operator]
    assert result.numbers["interval_high"] < 0  # type: ignore[operator]
    assert result.reason.startswith("mae improvement -")
    assert "< 2.00% floor" in result.reason


def test_marginal_candidate_passes_the_point_rule_but_not_require_significant() -> None:
    view = model_view(*regression_pair(0.95, 0.9))
    point = improvement(view, FLOOR)
    strict = improvement(view, FLOOR.model_copy(update={"require_significant": True}))
    assert point.passed
    assert point.numbers["improvement"] >= 0.02  # type: ignore[operator]
    assert not strict.passed
    assert strict.numbers["interval_low"] < 0.02  # type: ignore[operator]
    assert strict.numbers["improvement"] == point.numbers["improvement"]
    assert "interval low end" in strict.reason


def test_improvement_is_deterministic_for_a_seed() -> None:
    view = model_view(*regression_pair(0.95, 0.9))
    assert improvement(view, FLOOR, seed=11) == improvement(view, FLOOR, seed=11)
    assert (
        improvement(view, FLOOR, seed=11).numbers["interval_low"]
        != improvement(view, FLOOR, seed=12).numbers["interval_low"]
    )


def test_interval_narrows_with_lower_confidence() -> None:
    view = model_view(*regression_pair(0.95, 0.9))
    wide = improvement(view, FLOOR).numbers
    narrow = improvement(view, FLOOR.model_copy(update={"improvement_confidence": 0.5})).numbers
    assert narrow["confidence"] == 0.5
    assert wide["interval_low"] < narrow["interval_low"]  # type: ignore[operator]
    assert narrow["interval_high"] < wide["interval_high"]  # type: ignore[operator]


def test_no_resamples_reports_no_interval() -> None:
    cfg = FLOOR.model_copy(update={"bootstrap_resamples": 0})
    result = improvement(model_view(*regression_pair(0.6, 0.3)), cfg)
    assert result.passed
    assert result.numbers["interval_low"] is None
    assert result.numbers["interval_high"] is None
    strict = improvement(
        model_view(*regression_pair(0.6, 0.3)), cfg.model_copy(update={"require_significant": True})
    )
    assert not strict.passed
    assert "bootstrap_resamples is 0" in strict.reason


def test_no_champion_passes_improvement() -> None:
    labels, candidate, _ = regression_pair(1.3, 0.3)
    result = improvement(model_view(labels, candidate, None), FLOOR)
    assert result.passed
    assert result.reason == "no champion yet: nothing to beat"
    assert "champion" not in result.numbers


def test_higher_is_better_metrics_improve_upwards() -> None:
    labels = np.array([1.0] * 50 + [0.0] * 50)
    champion = np.concatenate([np.full(30, 0.9), np.full(20, 0.1), np.full(50, 0.1)])
    candidate = np.concatenate([np.full(45, 0.9), np.full(5, 0.1), np.full(50, 0.1)])
    view = model_view(labels, candidate, champion, metric="recall", task="binary")
    result = improvement(view, FLOOR)
    assert result.passed
    assert result.numbers["candidate"] == 0.9
    assert result.numbers["champion"] == 0.6
    assert result.numbers["improvement"] == pytest.approx(0.5)


def test_recent_window_catches_a_regression_on_the_newest_rows() -> None:
    labels, candidate, champion = regression_pair(0.6, 0.3)
    recent_labels, recent_champion, recent_candidate = regression_pair(0.8, 0.0, n=200, seed=5)
    recent = (recent_labels, recent_candidate, recent_champion)
    view = model_view(labels, candidate, champion, recent=recent)
    results = by_name(model_gates(view, FLOOR))
    assert results["improvement"].passed
    window = results["recent_window"]
    assert not window.passed
    assert window.numbers["improvement"] == pytest.approx(-0.25)  # 1/0.8 - 1 worse
    assert window.numbers["tolerance"] == 0.0
    assert window.numbers["samples"] == 200
    assert (
        "recent mae change -25.00% vs the champion is worse than the 0.00% tolerance"
        in window.reason
    )
    assert first_failure(list(results.values())) is window
    relaxed = FLOOR.model_copy(update={"recent_regression_tolerance": 0.3})
    assert by_name(model_gates(view, relaxed))["recent_window"].passed


def test_recent_window_is_skipped_or_passes_when_it_cannot_compare() -> None:
    labels, candidate, champion = regression_pair(0.6, 0.3)
    recent = (labels[:50], candidate[:50], champion[:50])
    off = FLOOR.model_copy(update={"recent_regression_tolerance": None})
    with_recent = model_view(labels, candidate, champion, recent=recent)
    assert "recent_window" not in by_name(model_gates(with_recent, off))
    assert "recent_window" not in by_name(
        model_gates(model_view(*regression_pair(0.6, 0.3)), FLOOR)
    )
    no_champion = model_view(labels, candidate, None, recent=(labels[:50], candidate[:50], None))
    result = by_name(model_gates(no_champion, FLOOR))["recent_window"]
    assert result.passed
    assert "no champion" in result.reason


def test_absolute_bar_on_f1() -> None:
    labels = np.array([1.0] * 10 + [0.0] * 10)
    candidate = np.array([0.9] * 8 + [0.1] * 2 + [0.9] * 2 + [0.1] * 8)  # precision = recall = 0.8
    view = model_view(labels, candidate, None, metric="log_loss", task="binary")
    ok = GatesConfig(absolute=AbsoluteGate(metric="f1", min=0.72))
    high = GatesConfig(absolute=AbsoluteGate(metric="f1", min=0.85))
    passed = by_name(model_gates(view, ok))["absolute"]
    failed = by_name(model_gates(view, high))["absolute"]
    assert passed.passed
    assert passed.numbers["value"] == pytest.approx(0.8)
    assert not failed.passed
    assert failed.numbers == {"metric": "f1", "value": 0.8, "min": 0.85, "max": None, "samples": 20}
    assert failed.reason == "candidate f1 0.8 < 0.85 minimum"


def test_absolute_upper_bound_on_mae() -> None:
    labels = np.zeros(4)
    view = model_view(labels, np.array([0.1, -0.1, 0.3, -0.3]), None)
    result = by_name(model_gates(view, GatesConfig(absolute=AbsoluteGate(metric="mae", max=0.15))))
    assert not result["absolute"].passed
    assert result["absolute"].numbers["value"] == pytest.approx(0.2)
    assert "> 0.15 maximum" in result["absolute"].reason
    assert "absolute" not in by_name(model_gates(view, GatesConfig()))


def test_contract_catches_missing_and_extra_features_and_a_task_change() -> None:
    labels, candidate, _ = regression_pair(1.0, 0.0, n=10)
    view = model_view(
        labels,
        candidate,
        None,
        contract_features=("a", "b", "c"),
        candidate_features=("a", "b", "z"),
        candidate_task="binary",
    )
    result = by_name(model_gates(view, GatesConfig()))["contract"]
    assert not result.passed
    assert result.numbers["missing"] == "c"
    assert result.numbers["extra"] == "z"
    assert result.numbers["missing_count"] == 1
    assert result.numbers["extra_count"] == 1
    assert result.numbers["candidate_task"] == "binary"
    assert result.numbers["contract_task"] == "regression"
    assert result.reason == (
        "candidate task binary != contract regression; missing features: c; extra features: z"
    )


def test_contract_passes_on_the_same_set_and_without_a_declared_contract() -> None:
    labels, candidate, _ = regression_pair(1.0, 0.0, n=10)
    same = by_name(model_gates(model_view(labels, candidate, None), GatesConfig()))["contract"]
    assert same.passed
    assert same.numbers["missing_count"] == 0
    undeclared = model_view(
        labels, candidate, None, contract_features=(), candidate_features=("q",)
    )
    result = by_name(model_gates(undeclared, GatesConfig()))["contract"]
    assert result.passed
    assert result.numbers["extra"] == ""
    off = GatesConfig(contract=False)
    assert "contract" not in by_name(model_gates(model_view(labels, candidate, None), off))


# Registry, helpers and views -----------------------------------------------------------------


def test_registry_names_in_evaluation_order() -> None:
    assert gate_names("data") == ["min_samples", "class_balance", "positive_rate", "stability"]
    assert gate_names("model") == ["contract", "absolute", "improvement", "recent_window"]
    assert gate_names() == gate_names("data") + gate_names("model")
    assert get_gate("stability").stage == "data"
    assert list(GATES) == gate_names()


def test_unknown_gate_lists_the_valid_names() -> None:
    with pytest.raises(ConfigError) as info:
        get_gate("min_sample")
    message = str(info.value)
    assert "'min_sample'" in message
    for name in gate_names():
        assert name in message
    with pytest.raises(ConfigError, match="valid: data, model"):
        gate_names("training")  # type: ignore[arg-type]


def test_a_gate_name_cannot_be_registered_twice() -> None:
    with pytest.raises(ValueError, match="already registered"):
        gate("improvement", stage="model")


def test_all_passed_and_first_failure() -> None:
    ok = GateResult("a", True, {}, "fine")
    bad = GateResult("b", False, {"x": 1}, "x too low")
    worse = GateResult("c", False, {}, "also bad")
    assert all_passed([ok, ok])
    assert not all_passed([ok, bad])
    assert first_failure([ok, bad, worse]) is bad
    assert first_failure([ok]) is None


def test_results_serialise_to_strict_json() -> None:
    labels = np.ones(20)
    view = model_view(labels, np.full(20, 0.9), np.full(20, 0.8), metric="roc_auc", task="binary")
    result = improvement(view, FLOOR)
    assert not result.passed  # one class: ROC AUC undefined, so no improvement is shown
    assert result.numbers["candidate"] is None
    payload = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert payload["name"] == "improvement"
    assert payload["numbers"]["champion"] is None
    assert payload["reason"] == result.reason


def test_views_refuse_mismatched_arrays() -> None:
    with pytest.raises(ValueError, match="predicted_at"):
        DataView(task="binary", labels=np.zeros(3), predicted_at=np.zeros(2), features={})
    with pytest.raises(ValueError, match="feature 'x'"):
        DataView(
            task="binary", labels=np.zeros(3), predicted_at=np.zeros(3), features={"x": np.zeros(4)}
        )
    with pytest.raises(ValueError, match="champion_eval"):
        model_view(np.zeros(3), np.zeros(3), np.zeros(2))
