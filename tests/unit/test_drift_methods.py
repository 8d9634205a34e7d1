"""Drift statistics: verdicts on shifted and unshifted samples, sample-size awareness, registry."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

from workers.errors import ConfigError
from workers.monitor.drift_methods import (
    DriftResult,
    Kind,
    compare,
    effective_js_threshold,
    effective_psi_threshold,
    effective_wasserstein_threshold,
    get_method,
    is_numeric,
    method_keys,
)
from workers.settings import DriftConfig

CFG = DriftConfig()
NUMERIC = ["ks", "psi", "wasserstein"]
CATEGORICAL = ["chi2", "jensen_shannon", "psi"]
CATEGORIES = ["a", "b", "c", "d"]
BASE_SHARES = [0.4, 0.3, 0.2, 0.1]
SHIFTED_SHARES = [0.1, 0.2, 0.3, 0.4]


def normal(seed: int, n: int, loc: float = 0.0) -> list[float]:
    return [float(x) for x in np.random.default_rng(seed).normal(loc, 1.0, n)]


def categorical(seed: int, n: int, shares: list[float]) -> list[str]:
    return [str(x) for x in np.random.default_rng(seed).choice(CATEGORIES, size=n, p=shares)]


def run(method: str, kind: Kind, ref: list[Any], cur: list[Any], cfg: DriftConfig) -> DriftResult:
    return get_method(method, kind)(ref, cur, cfg)


# Registry ------------------------------------------------------------------------------------


def test_method_keys_per_kind() -> None:
    assert method_keys("numeric") == NUMERIC
    assert method_keys("categorical") == CATEGORICAL


def test_registered_methods_know_their_key_and_kind() -> None:
    numeric_psi = get_method("psi", "numeric")
    categorical_psi = get_method("psi", "categorical")
    assert numeric_psi.key == categorical_psi.key == "psi"
    assert numeric_psi.kinds == frozenset({"numeric"})
    assert categorical_psi.kinds == frozenset({"categorical"})
    assert numeric_psi is not categorical_psi


def test_unknown_key_lists_valid_keys() -> None:
    with pytest.raises(ConfigError) as err:
        get_method("kolmogorov", "numeric")
    assert str(err.value) == (
        "unknown drift method 'kolmogorov' for numeric features; valid: ks, psi, wasserstein"
    )


@pytest.mark.parametrize(
    ("key", "kind", "valid"),
    [
        ("chi2", "numeric", "valid: ks, psi, wasserstein"),
        ("ks", "categorical", "valid: chi2, jensen_shannon, psi"),
        ("wasserstein", "categorical", "valid: chi2, jensen_shannon, psi"),
    ],
)
def test_method_of_the_wrong_kind_is_refused(key: str, kind: Kind, valid: str) -> None:
    with pytest.raises(ConfigError, match=f"'{key}' for {kind} features; {valid}$"):
        get_method(key, kind)


def test_compare_refuses_a_method_of_the_wrong_kind() -> None:
    with pytest.raises(ConfigError, match="valid: ks, psi, wasserstein"):
        compare(normal(1, 200), normal(2, 200), CFG, method="chi2")


# Every method: a clear shift drifts, the same distribution does not ---------------------------


@pytest.mark.parametrize("method", NUMERIC)
def test_numeric_shift_drifts(method: str) -> None:
    result = run(method, "numeric", normal(1, 1000), normal(2, 1000, loc=1.0), CFG)
    assert result.drifted
    assert result.method == method
    assert result.statistic is not None and result.statistic > result.threshold
    assert (result.n_reference, result.n_current) == (1000, 1000)


@pytest.mark.parametrize("method", NUMERIC)
def test_numeric_same_distribution_does_not_drift(method: str) -> None:
    result = run(method, "numeric", normal(1, 1000), normal(2, 1000), CFG)
    assert not result.drifted
    assert result.statistic is not None


@pytest.mark.parametrize("method", CATEGORICAL)
def test_categorical_shift_drifts(method: str) -> None:
    ref = categorical(1, 1000, BASE_SHARES)
    cur = categorical(2, 1000, SHIFTED_SHARES)
    result = run(method, "categorical", ref, cur, CFG)
    assert result.drifted
    assert result.statistic is not None and result.statistic > result.threshold


@pytest.mark.parametrize("method", CATEGORICAL)
def test_categorical_same_distribution_does_not_drift(method: str) -> None:
    ref = categorical(1, 1000, BASE_SHARES)
    cur = categorical(2, 1000, BASE_SHARES)
    result = run(method, "categorical", ref, cur, CFG)
    assert not result.drifted
    assert result.statistic is not None


# Sample-size awareness -----------------------------------------------------------------------


def test_ks_same_moderate_shift_drifts_on_many_rows_only() -> None:
    cfg = DriftConfig(min_samples=20)
    few = run("ks", "numeric", normal(1, 50), normal(2, 50, loc=0.3), cfg)
    many = run("ks", "numeric", normal(1, 5000), normal(2, 5000, loc=0.3), cfg)
    assert not few.drifted
    assert few.p_value is not None and few.p_value >= cfg.alpha
    assert many.drifted
    assert many.p_value is not None and many.p_value < cfg.alpha
    assert many.statistic is not None and many.statistic >= cfg.min_effect


def test_ks_negligible_shift_is_significant_but_below_the_effect_floor() -> None:
    result = run("ks", "numeric", normal(1, 50_000), normal(2, 50_000, loc=0.05), CFG)
    assert result.p_value is not None and result.p_value < CFG.alpha
    assert result.statistic is not None and result.statistic < CFG.min_effect
    assert not result.drifted
    assert result.threshold == CFG.min_effect


def test_chi2_same_moderate_shift_drifts_on_many_rows_only() -> None:
    cfg = DriftConfig(min_samples=20)
    moderate = [0.3, 0.3, 0.2, 0.2]
    few = run(
        "chi2", "categorical", categorical(1, 50, BASE_SHARES), categorical(2, 50, moderate), cfg
    )
    many = run(
        "chi2",
        "categorical",
        categorical(1, 5000, BASE_SHARES),
        categorical(2, 5000, moderate),
        cfg,
    )
    assert not few.drifted
    assert many.drifted


def test_chi2_effect_without_enough_evidence_does_not_drift() -> None:
    # 60/40 against 40/60 on 100 rows each: chi2 = 8, V = sqrt(8 / 200) = 0.2, p = 0.0047.
    ref = ["a"] * 60 + ["b"] * 40
    cur = ["a"] * 40 + ["b"] * 60
    result = run("chi2", "categorical", ref, cur, CFG)
    assert result.statistic == pytest.approx(0.2)
    assert result.p_value == pytest.approx(0.004678, rel=1e-3)
    assert not result.drifted  # V reaches min_effect, but p is above alpha


@pytest.mark.parametrize(
    ("method", "kind"),
    [
        ("psi", "numeric"),
        ("wasserstein", "numeric"),
        ("psi", "categorical"),
        ("jensen_shannon", "categorical"),
    ],
)
def test_distance_threshold_shrinks_with_sample_size(method: str, kind: Kind) -> None:
    cfg = DriftConfig(min_samples=20)
    if kind == "numeric":
        small = run(method, kind, normal(1, 50), normal(2, 50), cfg)
        large = run(method, kind, normal(1, 50_000), normal(2, 50_000), cfg)
    else:
        small = run(
            method, kind, categorical(1, 50, BASE_SHARES), categorical(2, 50, BASE_SHARES), cfg
        )
        large = run(
            method,
            kind,
            categorical(1, 50_000, BASE_SHARES),
            categorical(2, 50_000, BASE_SHARES),
            cfg,
        )
    base = {
        "psi": cfg.psi_threshold,
        "wasserstein": cfg.wasserstein_threshold,
        "jensen_shannon": cfg.js_threshold,
    }[method]
    assert small.threshold > large.threshold > base
    assert large.threshold - base < 0.1 * (small.threshold - base)


def test_effective_threshold_formulas() -> None:
    noise_50 = 1 / 50 + 1 / 50
    assert effective_psi_threshold(CFG, 10, 50, 50) == pytest.approx(0.2 + 9 * noise_50)
    assert effective_psi_threshold(CFG, 1, 50, 50) == pytest.approx(0.2)
    assert effective_js_threshold(CFG, 4, 50, 50) == pytest.approx(
        0.1 + math.sqrt(3 / (8 * math.log(2)) * noise_50)
    )
    assert effective_wasserstein_threshold(CFG, 50, 50) == pytest.approx(
        0.25 + 1.3 * math.sqrt(noise_50)
    )
    for n_small, n_large in [(50, 50_000), (100, 1000)]:
        assert effective_psi_threshold(CFG, 10, n_small, n_small) > effective_psi_threshold(
            CFG, 10, n_large, n_large
        )
        assert effective_js_threshold(CFG, 4, n_small, n_small) > effective_js_threshold(
            CFG, 4, n_large, n_large
        )


def test_psi_threshold_counts_the_bins_actually_used() -> None:
    # A reference with three distinct values has at most three quantile bins, not ten.
    ref = [1.0, 2.0, 3.0] * 100
    result = run("psi", "numeric", ref, list(ref), CFG)
    assert result.note == "3 bins"
    assert result.threshold == pytest.approx(effective_psi_threshold(CFG, 3, 300, 300))
    assert result.statistic == pytest.approx(0.0)


# Too few samples -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "kind"),
    [(m, "numeric") for m in NUMERIC] + [(m, "categorical") for m in CATEGORICAL],
)
def test_too_few_samples_gives_no_verdict(method: str, kind: Kind) -> None:
    ref: list[Any]
    cur: list[Any]
    if kind == "numeric":
        ref, cur = normal(1, 500), normal(2, 40, loc=5.0)
    else:
        ref, cur = ["a"] * 500, ["b"] * 40
    result = run(method, kind, ref, cur, CFG)
    assert result.statistic is None
    assert result.p_value is None
    assert not result.drifted
    assert result.note == "too few samples (40 < 100)"
    assert (result.n_reference, result.n_current) == (500, 40)


def test_min_samples_counts_usable_values_only() -> None:
    ref = normal(1, 200)
    cur: list[Any] = [*normal(2, 99, loc=5.0), None, math.nan, math.inf]
    assert compare(ref, cur, CFG).statistic is None
    enough = compare(ref, [*cur, 5.0], CFG)
    assert enough.statistic is not None and enough.drifted


# Kinds and cleaning --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2, 3], True),
        ([1.5, 2, None, -3.0], True),
        ([np.int64(1), np.float32(2.5)], True),
        ([1.0, math.nan, math.inf], True),
        ([None, None], True),
        ([], True),
        (["a", "b"], False),
        ([1, "2"], False),
        ([True, False], False),
        ([1, True], False),
        ([np.bool_(True)], False),
        ([None, "x"], False),
    ],
)
def test_is_numeric(values: list[Any], expected: bool) -> None:
    assert is_numeric(values) is expected


def test_compare_picks_kind_and_configured_method() -> None:
    cfg = DriftConfig(numeric_method="wasserstein", categorical_method="jensen_shannon")
    assert compare(normal(1, 200), normal(2, 200), cfg).method == "wasserstein"
    strings = categorical(1, 200, BASE_SHARES)
    assert compare(strings, strings, cfg).method == "jensen_shannon"
    bools = [True, False] * 100
    assert compare(bools, bools, cfg).method == "jensen_shannon"
    assert compare(normal(1, 200), normal(2, 200), cfg, method="ks").method == "ks"


def test_compare_with_explicit_kind_treats_numbers_as_categories() -> None:
    ints = [1, 2, 3, 4] * 50
    result = compare(ints, [str(v) for v in ints], CFG, kind="categorical")
    assert result.method == "chi2"
    assert result.statistic == pytest.approx(0.0)
    assert not result.drifted


def test_none_nan_and_inf_are_dropped_from_numbers() -> None:
    ref, cur = normal(1, 300), normal(2, 300, loc=0.5)
    dirty_ref: list[Any] = [None, *ref, math.nan, math.inf, -math.inf]
    dirty_cur: list[Any] = [*cur, None, math.nan]
    for method in NUMERIC:
        clean = compare(ref, cur, CFG, method=method)
        dirty = compare(dirty_ref, dirty_cur, CFG, method=method)
        assert dirty == clean
        assert (dirty.n_reference, dirty.n_current) == (300, 300)


def test_none_and_nan_are_dropped_from_categories() -> None:
    ref, cur = categorical(1, 300, BASE_SHARES), categorical(2, 300, SHIFTED_SHARES)
    for method in CATEGORICAL:
        clean = run(method, "categorical", ref, cur, CFG)
        dirty = run(method, "categorical", [*ref, None, math.nan], [None, *cur], CFG)
        assert dirty == clean
        assert (dirty.n_reference, dirty.n_current) == (300, 300)


def test_numeric_method_refuses_strings() -> None:
    with pytest.raises(TypeError, match="str value: 'x'"):
        compare(normal(1, 200), [*normal(2, 199), "x"], CFG)


# Method details ------------------------------------------------------------------------------


def test_categorical_psi_matches_the_formula() -> None:
    ref = ["a"] * 50 + ["b"] * 50
    cur = ["a"] * 75 + ["b"] * 25
    result = run("psi", "categorical", ref, cur, CFG)
    expected = (0.75 - 0.5) * math.log(0.75 / 0.5) + (0.25 - 0.5) * math.log(0.25 / 0.5)
    assert result.statistic == pytest.approx(expected)
    assert result.threshold == pytest.approx(0.2 + 1 * (1 / 100 + 1 / 100))
    assert result.drifted


def test_psi_on_a_new_category_is_large_but_finite() -> None:
    result = run("psi", "categorical", ["a"] * 100, ["a"] * 50 + ["new"] * 50, CFG)
    assert result.statistic is not None and math.isfinite(result.statistic)
    assert result.statistic > 1.0
    assert result.drifted


def test_jensen_shannon_bounds() -> None:
    disjoint = run("jensen_shannon", "categorical", ["a"] * 100, ["b"] * 100, CFG)
    same = run("jensen_shannon", "categorical", ["a", "b"] * 50, ["b", "a"] * 50, CFG)
    assert disjoint.statistic == pytest.approx(1.0)
    assert disjoint.drifted
    assert same.statistic == 0.0
    assert not same.drifted


def test_chi2_with_one_category_is_not_drift() -> None:
    result = run("chi2", "categorical", ["a"] * 200, ["a"] * 150, CFG)
    assert result.statistic == 0.0
    assert result.p_value == 1.0
    assert not result.drifted


def test_psi_on_a_zero_inflated_feature_without_drift() -> None:
    rng = np.random.default_rng(7)

    def sample(n: int) -> list[float]:
        values = rng.exponential(1.0, n)
        values[rng.random(n) < 0.6] = 0.0
        return [float(v) for v in values]

    result = run("psi", "numeric", sample(2000), sample(2000), CFG)
    assert result.statistic is not None and result.statistic < 0.05
    assert not result.drifted


def test_psi_on_a_constant_reference_sees_a_new_value() -> None:
    shifted = run("psi", "numeric", [5.0] * 200, [6.0] * 200, CFG)
    same = run("psi", "numeric", [5.0] * 200, [5.0] * 200, CFG)
    assert shifted.drifted
    assert same.statistic == pytest.approx(0.0)
    assert not same.drifted


def test_wasserstein_is_in_reference_standard_deviations() -> None:
    ref = normal(1, 2000)
    scaled = run("wasserstein", "numeric", [10 * x for x in ref], [10 * x + 5 for x in ref], CFG)
    assert scaled.statistic == pytest.approx(5 / (10 * float(np.std(ref))))
    constant = run("wasserstein", "numeric", [1.0] * 200, [1.5] * 200, CFG)
    assert constant.statistic == pytest.approx(0.5)
    assert constant.note == "constant reference: distance not scaled"


def test_drift_result_is_frozen() -> None:
    result = compare(normal(1, 200), normal(2, 200), CFG)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.drifted = True  # type: ignore[misc]
