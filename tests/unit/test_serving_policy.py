"""Serving policy: canary routing, blending and the confidence threshold, without a model."""

from __future__ import annotations

import pytest

from workers.serving.policy import ServingOptions, blend, in_canary, uncertain

KEYS = [f"entity-{i}" for i in range(10_000)]


def test_canary_routing_is_stable_per_key() -> None:
    first = [in_canary(k, 0.3) for k in KEYS[:500]]
    again = [in_canary(k, 0.3) for k in KEYS[:500]]
    assert first == again
    # Not constant: both sides of the split occur.
    assert any(first) and not all(first)


@pytest.mark.parametrize("share", [0.25, 0.5])
def test_canary_share_over_many_keys_is_close_to_the_configured_share(share: float) -> None:
    routed = sum(in_canary(k, share) for k in KEYS) / len(KEYS)
    assert share - 0.02 <= routed <= share + 0.02


def test_canary_share_of_ten_percent() -> None:
    routed = sum(in_canary(k, 0.1) for k in KEYS) / len(KEYS)
    assert 0.08 <= routed <= 0.12


def test_a_larger_share_keeps_the_keys_of_a_smaller_one() -> None:
    # The bucket is fixed per key: raising the share only adds keys to the canary.
    small = {k for k in KEYS if in_canary(k, 0.1)}
    large = {k for k in KEYS if in_canary(k, 0.3)}
    assert small < large


def test_share_zero_never_and_share_one_always_routes() -> None:
    assert not any(in_canary(k, 0.0) for k in KEYS)
    assert all(in_canary(k, 1.0) for k in KEYS)
    assert not in_canary("", 0.0) and in_canary("", 1.0)


def test_blend_weight_one_is_the_model_only() -> None:
    assert blend(0.8, 0.2, 1.0) == 0.8


def test_blend_weight_zero_is_the_rules_only() -> None:
    assert blend(0.8, 0.2, 0.0) == pytest.approx(0.2)


def test_blend_weighs_model_and_rules() -> None:
    assert blend(0.8, 0.2, 0.7) == pytest.approx(0.7 * 0.8 + 0.3 * 0.2)
    assert blend(0.8, 0.2, 0.5) == pytest.approx(0.5)


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.7, 1.0])
def test_a_missing_rule_score_leaves_the_model_score(weight: float) -> None:
    assert blend(0.42, None, weight) == 0.42


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (0.5, True),
        (0.85, True),
        (0.15, True),
        (0.9, False),  # confidence exactly at the threshold is not uncertain
        (0.1, False),
        (0.95, False),
        (0.03, False),
    ],
)
def test_uncertain_when_binary_confidence_is_under_the_threshold(
    score: float, expected: bool
) -> None:
    assert uncertain(score, 0.9, "binary") is expected
    assert (max(score, 1.0 - score) < 0.9) is expected


@pytest.mark.parametrize("score", [0.5, 0.55, 0.99, 0.01])
def test_uncertain_only_for_binary_tasks(score: float) -> None:
    assert uncertain(score, 0.9, "regression") is False
    assert uncertain(score, None, "binary") is False


def test_default_options() -> None:
    opts = ServingOptions()
    assert (opts.confidence_threshold, opts.blend_weight, opts.canary_share) == (None, 1.0, 0.0)


@pytest.mark.parametrize(
    "values",
    [
        {"blend_weight": -0.01},
        {"blend_weight": 1.01},
        {"canary_share": -0.1},
        {"canary_share": 1.5},
        {"confidence_threshold": 0.49},
        {"confidence_threshold": 1.01},
        {"confidence_threshold": 0.0},
    ],
)
def test_options_reject_out_of_range_values(values: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ServingOptions(**values)


@pytest.mark.parametrize(
    "values",
    [
        {"blend_weight": 0.0},
        {"blend_weight": 1.0},
        {"canary_share": 0.0},
        {"canary_share": 1.0},
        {"confidence_threshold": 0.5},
        {"confidence_threshold": 1.0},
    ],
)
def test_options_accept_the_bounds(values: dict[str, float]) -> None:
    opts = ServingOptions(**values)
    for name, value in values.items():
        assert getattr(opts, name) == value
