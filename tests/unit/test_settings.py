"""Settings: file defaults, environment overrides, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from workers.settings import DEFAULT_CONFIG_FILE, REPO_ROOT, ModelConfig, Settings


@pytest.fixture(autouse=True)
def shipped_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OL_CONFIG_FILE", str(DEFAULT_CONFIG_FILE))


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


def test_defaults_come_from_the_config_file() -> None:
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
