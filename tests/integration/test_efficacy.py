"""The drift-recovery benchmark (`make efficacy`) in small: one abrupt scenario through the
real worker, broker and PostgreSQL, read back and measured like the full run."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from benchmarks.efficacy import CONFIG, ScenarioResult, model_name, run_scenario_end_to_end
from tests.conftest import SettingsFactory
from workers.settings import ModelConfig, MonitoringConfig
from workers.synth.drift_streams import Kind
from workers.worker import prepare

pytestmark = pytest.mark.integration


def efficacy_model(name: str) -> ModelConfig:
    with CONFIG.open("rb") as fh:
        return ModelConfig(**tomllib.load(fh)["models"][name])


async def run_small(
    make_settings: SettingsFactory,
    scenario: Kind,
    events: int,
    log_dir: Path,
    *,
    onset_share: float = 0.5,
    return_share: float | None = None,
) -> ScenarioResult:
    """A regression scenario of the benchmark at 1,000 events/s, outcomes 0.5 s late."""
    model = model_name("regression", scenario)
    settings = make_settings(
        models={model: efficacy_model(model)},
        monitoring=MonitoringConfig(
            snapshot_interval_seconds=1.0, quality_interval_seconds=0.5, drift_interval_seconds=1.0
        ),
    )
    await prepare(settings)
    return await run_scenario_end_to_end(
        settings,
        scenario,
        "regression",
        events,
        1000.0,
        0.5,
        onset_share=onset_share,
        return_share=return_share,
        log_dir=log_dir,
    )


async def test_an_abrupt_change_is_measured_end_to_end(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    result = await run_small(make_settings, "abrupt", 6000, tmp_path)
    # Nothing lost, doubled or stuck: every prediction stored and labeled with its own label.
    assert result.delivery.complete, result.delivery.text()
    assert result.delivery.dead_letters == 0
    assert result.onset == 3000
    assert result.served_by.get("initial", 0) > 0
    # The change is seen, and nothing fired before it.
    assert result.detection_delay is not None, result.signals
    assert not [s for s in result.signals if s.index < 3000], result.signals
    # The loop retrained on examples predicted after the change only, and promoted it.
    assert result.promotions, (result.runs, result.signals)
    assert result.loop_rows is not None and result.loop_rows[0] >= 3000, result.loop_rows
    assert result.whole_never.n == result.whole_loop.n == 6000


async def test_a_concept_that_comes_back_is_recalled_end_to_end(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    # On a quiet machine the retrain is served about 2,300 events after the change and the
    # recall about 1,300 after the return, or about 5,000 when a refresh was training as the
    # concept came back (the recall then waits for the next training process to import its
    # learners). The spans leave room for a CI machine 3x slower: the recall must come
    # before the stream ends to be seen serving.
    result = await run_small(
        make_settings, "drift_back", 30_000, tmp_path, onset_share=8 / 30, return_share=13 / 30
    )
    assert result.delivery.complete, result.delivery.text()
    assert (result.onset, result.return_at) == (8_000, 13_000)
    # The change was retrained on; after the return, the initial champion (adopted with
    # its artifact) served again by recall, without training, before the stream ended.
    assert result.promotions, (result.runs, result.signals)
    recalls = [r for r in result.runs if r.trigger == "recall" and r.status == "succeeded"]
    assert [r.candidate_version for r in recalls] == ["initial"], result.runs
    first = result.promotions[0].first_served
    assert first is not None and result.served_by["initial"] > first, result.served_by
