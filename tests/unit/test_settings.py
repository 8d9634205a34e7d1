"""Settings: file defaults, environment overrides, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from workers.settings import DEMO_CONFIG_FILE, REPO_ROOT, AlertRule, ModelConfig, Settings


@pytest.fixture(autouse=True)
def demo_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OL_CONFIG_FILE", str(DEMO_CONFIG_FILE))


def test_the_production_example_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OL_CONFIG_FILE", str(REPO_ROOT / "config" / "production.example.toml"))
    s = Settings()
    gates = s.models["purchase"].retrain.gates
    assert (gates.min_positives, gates.min_negatives, gates.positive_rate) == (
        200,
        200,
        (0.02, 0.5),
    )
    assert gates.stability.enabled and gates.stability.min_agreement == 0.75
    assert s.models["purchase"].retrain.promotion == "approval"
    assert s.models["ctr"].monitor.alerts[0].window == "7d"


def test_the_demo_profile_defines_the_demo_models() -> None:
    s = Settings()
    assert s.topics.predictions == "ol.predictions"
    assert s.models["ctr"].horizon_seconds > 0
    assert s.models["purchase"].no_outcome == "negative"


def test_environment_overrides_nested_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OL_WORKER__BATCH_MAX", "123")
    monkeypatch.setenv("OL_MODELS__CTR__HORIZON_SECONDS", "99")
    s = Settings()
    assert s.worker.batch_max == 123
    assert s.models["ctr"].horizon_seconds == 99
    assert s.models["ctr"].task == "regression"  # the rest of the table still comes from the file


def test_database_url_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OL_DATABASE_URL", "postgresql://u:hunter2@db/x")
    s = Settings()
    assert "hunter2" not in repr(s)
    assert s.database_url is not None and "hunter2" in s.database_url.get_secret_value()


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        Settings().app_id = "other"  # type: ignore[misc]


def test_config_file_can_be_replaced(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "ol.toml"
    cfg.write_text(
        'app_id = "mine"\n[models.churn]\nhorizon_seconds = 60\nno_outcome = "negative"\n'
    )
    monkeypatch.setenv("OL_CONFIG_FILE", str(cfg))
    s = Settings()
    assert s.app_id == "mine" and list(s.models) == ["churn"]


def test_missing_config_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OL_CONFIG_FILE", "/nonexistent/ol.toml")
    with pytest.raises(FileNotFoundError, match="OL_CONFIG_FILE"):
        Settings()


def test_typos_in_config_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "ol.toml"
    cfg.write_text("[worker]\nbatch_maxx = 5\n")
    monkeypatch.setenv("OL_CONFIG_FILE", str(cfg))
    with pytest.raises(ValidationError, match="batch_maxx"):
        Settings()


def test_label_precedence_must_name_both_sources() -> None:
    with pytest.raises(ValidationError, match="label_precedence"):
        ModelConfig(horizon_seconds=1, label_precedence=("feedback", "feedback"))
    assert not ModelConfig(
        horizon_seconds=1, label_precedence=("outcome", "feedback")
    ).feedback_wins


def test_an_empty_config_file_gives_the_code_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    monkeypatch.setenv("OL_CONFIG_FILE", str(empty))
    from_empty = Settings().model_dump()
    monkeypatch.delenv("OL_CONFIG_FILE")
    assert Settings().model_dump() == from_empty
    # A model table that names only its horizon gets the documented defaults.
    only_horizon = tmp_path / "m.toml"
    only_horizon.write_text("[models.m]\nhorizon_seconds = 60\n")
    monkeypatch.setenv("OL_CONFIG_FILE", str(only_horizon))
    assert Settings().models["m"] == ModelConfig(horizon_seconds=60)


def test_readme_documents_the_code_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every row of the README's defaults table holds the value the code uses."""
    monkeypatch.delenv("OL_CONFIG_FILE")
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("<!-- defaults:begin -->")[1].split("<!-- defaults:end -->")[0]
    m = ModelConfig(horizon_seconds=60).model_dump()
    top = Settings().model_dump()
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert len(rows) >= 15
    for line in rows:
        key, value = (cell.strip().strip("`") for cell in line.split("|")[1:3])
        node: object = m if key.startswith("models.") else top
        for part in key.removeprefix("models.<name>.").split("."):
            assert isinstance(node, dict), key
            node = node[part]
        assert str(node) == value, f"README says {key} = {value}, the code {node}"


@pytest.mark.parametrize(
    ("rule", "complaint"),
    [
        ({"metric": "mae", "window": "last_500", "above": float("nan")}, "finite"),
        ({"metric": "mae", "window": "last_500", "above": float("inf")}, "finite"),
        ({"metric": "mae", "window": "last_500"}, "exactly one"),
        ({"metric": "mae", "window": "last_500", "above": 1, "above_reference": 1.2}, "one of"),
        ({"metric": "mae", "window": "last_500", "above_reference": 0.9}, "greater than 1"),
        ({"metric": "mae", "window": "last_500", "below": 0}, "never negative"),
        ({"metric": "accuracy", "window": "last_500", "below": 1.5}, r"\[0, 1\]"),
        ({"metric": "bias", "window": "last_500", "above_reference": 1.5}, "absolute"),
    ],
)
def test_senseless_alert_bounds_are_refused(rule: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        AlertRule.model_validate(rule)


def test_a_nan_in_the_config_file_names_its_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = tmp_path / "nan.toml"
    cfg.write_text(
        "[models.m]\nhorizon_seconds = 60\n[models.m.retrain.gates]\nmin_improvement = nan\n"
    )
    monkeypatch.setenv("OL_CONFIG_FILE", str(cfg))
    with pytest.raises(ValidationError, match=r"models\.m\.retrain\.gates\.min_improvement"):
        Settings()


def test_alert_rules_wait_for_enough_examples() -> None:
    rule = AlertRule(metric="mae", window="last_500", above=0.02)
    assert rule.min_samples == 200
    assert not rule.breached(0.5, n=1) and not rule.breached(0.5, n=199)
    assert rule.breached(0.5, n=200) and not rule.breached(0.01, n=500)


def test_relative_bounds_follow_the_reference() -> None:
    rule = AlertRule(metric="mae", window="last_500", above_reference=1.25)
    assert rule.bound(None) is None and not rule.breached(9.0, n=500, reference=None)
    assert rule.bound(2.0) == 2.5
    assert rule.breached(2.6, n=500, reference=2.0) and not rule.breached(2.4, 500, 2.0)


def test_min_samples_on_small_windows() -> None:
    small = ModelConfig(
        horizon_seconds=1,
        monitor={
            "count_windows": (100,),
            "alerts": [{"metric": "mae", "window": "last_100", "above": 0.1}],
        },
    )
    assert small.monitor.alerts[0].min_samples == 100  # a full window, not an impossible 200
    with pytest.raises(ValidationError, match="could never fire"):
        ModelConfig(
            horizon_seconds=1,
            monitor={
                "count_windows": (100,),
                "alerts": [
                    {"metric": "mae", "window": "last_100", "above": 0.1, "min_samples": 300}
                ],
            },
        )


def test_contradictory_gates_are_refused() -> None:
    with pytest.raises(ValidationError, match="positive_rate"):
        ModelConfig(horizon_seconds=1, retrain={"gates": {"positive_rate": (0.5, 0.1)}})
    with pytest.raises(ValidationError, match="nothing passes"):
        ModelConfig(
            horizon_seconds=1,
            retrain={"gates": {"absolute": {"metric": "mae", "min": 2, "max": 1}}},
        )
