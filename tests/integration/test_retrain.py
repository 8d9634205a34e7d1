"""The retraining loop on a real PostgreSQL with real training in a process pool:
triggers, gates, registry, approval, rollback, commands and their replays."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import jcs  # type: ignore[import-untyped]
import numpy as np
import pytest

from schemas import (
    ApproveVersion,
    CommandResult,
    ModelPromoted,
    ModelRejected,
    OutcomeObserved,
    PauseModel,
    PredictionMade,
    QualityAlertRaised,
    ResumeModel,
    RollbackModel,
)
from schemas.base import utc_now
from schemas.commands import Command
from tests.conftest import SettingsFactory
from tests.integration.fakes import CollectingPublisher, CollectingSink
from workers.control import sql as control_sql
from workers.control.signing import sign, signing_key
from workers.ingest.decode import RawMessage
from workers.registry import views
from workers.retrain import sql as retrain_sql
from workers.runtime import Services
from workers.settings import (
    AlertRule,
    GatesConfig,
    ModelConfig,
    MonitorConfig,
    MonitoringConfig,
    RetrainConfig,
    Settings,
    TriggerConfig,
)

pytestmark = pytest.mark.integration


def model_config(**retrain: Any) -> ModelConfig:
    gates = retrain.pop("gates", GatesConfig(min_samples=100, bootstrap_resamples=50))
    triggers = retrain.pop("triggers", TriggerConfig(on_quality_alert=True, cooldown_seconds=600))
    return ModelConfig(
        horizon_seconds=3600,
        features=("x", "channel"),
        monitor=MonitorConfig(
            count_windows=(100,),
            time_windows_seconds=(),
            alerts=(AlertRule(metric="mae", window="last_100", above=0.02),),
            error_detector="none",
        ),
        retrain=RetrainConfig(
            candidates=("lightgbm", "linear"),
            validation_share=0.25,
            min_post_change=100,
            triggers=triggers,
            gates=gates,
            **retrain,
        ),
    )


@pytest.fixture
async def services(
    make_settings: SettingsFactory, pool: asyncpg.Pool, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Services, CollectingPublisher, Settings]]:
    cfg = getattr(request, "param", None) or model_config()
    settings = make_settings(
        models={"ctr": cfg}, monitoring=MonitoringConfig(snapshot_interval_seconds=0.001)
    )
    publisher = CollectingPublisher()
    s = Services(settings, pool, CollectingSink(), publisher)
    yield s, publisher, settings
    await s.retrain.idle()
    await s.control.idle()
    s.executor.shutdown(wait=True)


async def ingest_examples(
    s: Services,
    settings: Settings,
    n: int,
    *,
    champion_error: float,
    start: int = 0,
    leak: bool = False,
) -> None:
    """Examples whose label is 0.05 + 0.03·x plus noise; the serving model's logged score is
    off by `champion_error`."""
    rng = np.random.default_rng(start)
    now = utc_now()
    raws = []
    for i in range(start, start + n):
        x = float(rng.normal())
        label = 0.05 + 0.03 * x + float(rng.normal(0, 0.01))
        features: dict[str, Any] = {"x": x, "channel": ["a", "b"][i % 2]}
        if leak:
            features["x"] = label  # the label copied into an input
        p = PredictionMade(
            prediction_id=f"p{i}",
            model="ctr",
            model_version="v1",
            features=features,
            prediction=label + float(rng.choice([-1, 1])) * champion_error,
            predicted_at=now - timedelta(minutes=30) + timedelta(milliseconds=i),
        )
        o = OutcomeObserved(
            prediction_id=p.prediction_id,
            outcome_kind="measured",
            value=label,
            observed_at=now - timedelta(minutes=10),
        )
        raws += [
            RawMessage(settings.topics.predictions, 0, 2 * i, None, p.to_bytes()),
            RawMessage(settings.topics.outcomes, 0, 2 * i + 1, None, o.to_bytes()),
        ]
    await s.ingest.handle(raws)


async def fetch(pool: asyncpg.Pool, query: str, *args: Any) -> list[asyncpg.Record]:
    async with pool.acquire() as c:
        return await c.fetch(query, *args)


async def champion(pool: asyncpg.Pool) -> str:
    rows = await fetch(
        pool, "SELECT version FROM model_aliases WHERE model='ctr' AND alias='champion'"
    )
    return rows[0]["version"]


def command_raw(settings: Settings, command: Command, *, signed: bool = True) -> RawMessage:
    if signed:
        command = sign(command, signing_key(settings))
    return RawMessage(settings.topics.control, 0, 0, None, command.to_bytes())


async def test_a_threshold_crossing_fires_exactly_one_retrain_that_is_promoted(
    services: tuple[Services, CollectingPublisher, Settings], pool: asyncpg.Pool
) -> None:
    s, publisher, settings = services
    await s.monitor.tick_quality()
    await ingest_examples(s, settings, 600, champion_error=0.04)
    await s.monitor.tick_quality()  # MAE over the last 100 is 0.04 > 0.02: an alert
    assert len(publisher.of_type(QualityAlertRaised)) == 1
    # More bad data and more alerts while the first run goes on: no second run.
    await ingest_examples(s, settings, 100, champion_error=0.05, start=1000)
    await s.monitor.tick_quality()
    await s.retrain.step_all()
    await s.retrain.idle()
    await s.retrain.step_all()
    await s.retrain.idle()

    runs = await fetch(pool, "SELECT * FROM retrain_runs")
    assert [(r["status"], r["trigger"], r["error"]) for r in runs] == [
        ("succeeded", "quality_alert", None)
    ]
    run = runs[0]
    assert set(run["durations"]) >= {"dataset_export", "data_gates", "training", "evaluation"}
    assert {g["name"] for g in run["gate_report"]} >= {"min_samples", "improvement", "contract"}
    assert await champion(pool) == f"r{run['id']}"
    history = await fetch(
        pool, "SELECT version, previous_version, set_by FROM alias_history ORDER BY id"
    )
    assert [(h["version"], h["previous_version"]) for h in history] == [
        ("v1", None),
        (f"r{run['id']}", "v1"),
    ]
    promoted = publisher.of_type(ModelPromoted)
    assert len(promoted) == 1 and promoted[0].files  # type: ignore[attr-defined]
    card = (
        await fetch(pool, "SELECT card FROM model_versions WHERE version = $1", f"r{run['id']}")
    )[0]["card"]
    assert card["parent_version"] == "v1" and card["samples"]["train"] > 0
    assert card["metrics"]["validation_mae"] < card["metrics"]["champion_validation_mae"]


@pytest.mark.parametrize(
    "services",
    [
        model_config(
            gates=GatesConfig(min_samples=100, min_improvement=0.02, bootstrap_resamples=50)
        )
    ],
    indirect=True,
)
async def test_a_candidate_worse_than_the_champion_is_not_promoted(
    services: tuple[Services, CollectingPublisher, Settings], pool: asyncpg.Pool
) -> None:
    s, publisher, settings = services
    await ingest_examples(s, settings, 400, champion_error=0.0)  # the champion is perfect
    run_id = await s.retrain.run("ctr", "command", {})
    run = (await fetch(pool, "SELECT * FROM retrain_runs WHERE id = $1", run_id))[0]
    assert run["status"] == "gated"
    improvement = next(g for g in run["gate_report"] if g["name"] == "improvement")
    assert improvement["passed"] is False and improvement["numbers"]["improvement"] < 0.02
    assert await champion(pool) == "v1"
    version = await fetch(
        pool, "SELECT status FROM model_versions WHERE version = $1", f"r{run_id}"
    )
    assert version[0]["status"] == "rejected"
    rejected = publisher.of_type(ModelRejected)
    assert len(rejected) == 1 and "improvement" in rejected[0].reason  # type: ignore[attr-defined]
    # What `outcomeloop runs ctr` shows: the run and the gate that stopped it.
    async with pool.acquire() as conn:
        shown = await views.runs(conn, "ctr", 5)
        listed = await views.versions(conn, "ctr", 5)
    assert shown[0]["id"] == run_id and shown[0]["status"] == "gated"
    assert shown[0]["failed_gate"]["name"] == "improvement"
    assert {v["version"]: v["status"] for v in listed}[f"r{run_id}"] == "rejected"


async def test_leakage_fails_the_run(
    services: tuple[Services, CollectingPublisher, Settings], pool: asyncpg.Pool
) -> None:
    s, publisher, settings = services
    await ingest_examples(s, settings, 300, champion_error=0.03, leak=True)
    run_id = await s.retrain.run("ctr", "command", {})
    run = (await fetch(pool, "SELECT * FROM retrain_runs WHERE id = $1", run_id))[0]
    assert run["status"] == "failed" and "near copy of the label" in run["error"]
    assert "'x'" in run["error"]
    assert any("leakage" in e.reason for e in publisher.of_type(ModelRejected))  # type: ignore[attr-defined]
    assert await champion(pool) == "v1"


@pytest.mark.parametrize("services", [model_config(promotion="approval")], indirect=True)
async def test_approval_rollback_and_replayed_commands(
    services: tuple[Services, CollectingPublisher, Settings], pool: asyncpg.Pool
) -> None:
    s, publisher, settings = services
    await ingest_examples(s, settings, 400, champion_error=0.04)
    run_id = await s.retrain.run("ctr", "command", {})
    version = f"r{run_id}"
    assert await champion(pool) == "v1"  # waits for an operator
    status = await fetch(pool, "SELECT status FROM model_versions WHERE version = $1", version)
    assert status[0]["status"] == "candidate"
    async with pool.acquire() as conn:  # `outcomeloop pending` and `models`
        waiting = await views.pending(conn, settings, utc_now())
        overview = {m["model"]: m for m in await views.models(conn, settings)}
    assert [(w["model"], w["version"]) for w in waiting] == [("ctr", version)]
    timeout = settings.models["ctr"].retrain.approval_timeout_seconds
    assert timeout - 120 < waiting[0]["expires_in_seconds"] <= timeout
    assert overview["ctr"]["champion"] == "v1" and overview["ctr"]["candidates"] == 1

    approve = command_raw(
        settings,
        ApproveVersion(model="ctr", version=version, issued_by="alice", reason="looks good"),
    )
    result = await s.control.handle(approve)
    assert result is not None and (result.status, result.replayed) == ("done", False)
    assert await champion(pool) == version

    rollback = command_raw(settings, RollbackModel(model="ctr", issued_by="bob", reason="alerts"))
    result = await s.control.handle(rollback)
    assert result is not None and result.status == "done" and result.data["version"] == "v1"
    assert await champion(pool) == "v1"
    assert publisher.of_type(ModelPromoted)[-1].rollback  # type: ignore[attr-defined]

    # The approval arrives again (a redelivery): answered, not done again.
    replay = await s.control.handle(approve)
    assert replay is not None and replay.replayed and replay.status == "done"
    assert await champion(pool) == "v1"
    audit = await fetch(
        pool, "SELECT actor, action FROM audit_log WHERE action IN ('approve','rollback','promote')"
    )
    assert [(a["actor"], a["action"]) for a in audit].count(("alice", "promote")) == 1
    commands = await fetch(pool, "SELECT command, status FROM commands ORDER BY received_at")
    assert [(c["command"], c["status"]) for c in commands] == [
        ("approve", "done"),
        ("rollback", "done"),
    ]
    results = publisher.of_type(CommandResult)
    assert [r.status for r in results] == ["accepted", "done", "accepted", "done", "done"]  # type: ignore[attr-defined]


async def test_unsigned_and_wrongly_signed_commands_are_refused(
    services: tuple[Services, CollectingPublisher, Settings], pool: asyncpg.Pool
) -> None:
    s, _, settings = services
    unsigned = command_raw(settings, PauseModel(model="ctr", issued_by="mallory"), signed=False)
    forged = RawMessage(
        settings.topics.control,
        0,
        1,
        None,
        sign(PauseModel(model="ctr", issued_by="mallory"), b"not the key").to_bytes(),
    )
    for raw in (unsigned, forged):
        result = await s.control.handle(raw)
        assert result is not None and result.status == "refused"
        assert "not authorised" in result.detail
    dead = await fetch(pool, "SELECT error_type, payload FROM dead_letters ORDER BY id")
    assert [d["error_type"] for d in dead] == ["unauthorized", "unauthorized"]
    assert bytes(dead[0]["payload"]) == unsigned.value
    paused = await fetch(pool, "SELECT paused FROM model_controls WHERE model = 'ctr'")
    assert not paused or paused[0]["paused"] is False
    audit = await fetch(pool, "SELECT action FROM audit_log")
    assert [a["action"] for a in audit] == ["refused:pause", "refused:pause"]


async def test_a_paused_model_never_retrains_on_its_own(
    services: tuple[Services, CollectingPublisher, Settings], pool: asyncpg.Pool
) -> None:
    s, _, settings = services
    await ingest_examples(s, settings, 300, champion_error=0.04)
    await s.control.handle(command_raw(settings, PauseModel(model="ctr", issued_by="alice")))
    assert await s.retrain.trigger("ctr", "quality_alert", {}) is None
    assert "paused" in (await s.retrain.decision("ctr", "quality_alert")).reason
    await s.control.handle(command_raw(settings, ResumeModel(model="ctr", issued_by="alice")))
    task = await s.retrain.trigger("ctr", "quality_alert", {})
    assert task is not None and await task is not None
    runs = await fetch(pool, "SELECT trigger FROM retrain_runs")
    assert [r["trigger"] for r in runs] == ["quality_alert"]


@pytest.mark.parametrize(
    "services",
    [
        model_config(
            triggers=TriggerConfig(on_quality_alert=False, outcome_count=400, cooldown_seconds=0)
        )
    ],
    indirect=True,
)
async def test_the_outcome_count_trigger_fires_on_new_outcomes_and_counts_again_after(
    services: tuple[Services, CollectingPublisher, Settings], pool: asyncpg.Pool
) -> None:
    """ "Retrain every N new outcomes": not before N matured since the last retrain, once
    when they have, and from zero again after it."""
    s, _, settings = services
    await ingest_examples(s, settings, 399, champion_error=0.04)
    assert await s.retrain.scheduled() == []
    await ingest_examples(s, settings, 1, champion_error=0.04, start=399)
    assert await s.retrain.scheduled() == ["ctr"]
    await s.retrain.idle()
    assert await s.retrain.scheduled() == []  # the 400 were counted at the trigger
    await ingest_examples(s, settings, 399, champion_error=0.04, start=1000)
    assert await s.retrain.scheduled() == []
    await ingest_examples(s, settings, 1, champion_error=0.04, start=1399)
    assert await s.retrain.scheduled() == ["ctr"]
    await s.retrain.idle()
    runs = await fetch(pool, "SELECT trigger, status FROM retrain_runs ORDER BY id")
    assert [r["trigger"] for r in runs] == ["outcome_count", "outcome_count"]


async def test_a_run_left_by_a_dead_worker_is_failed_but_a_live_one_is_not(
    services: tuple[Services, CollectingPublisher, Settings], pool: asyncpg.Pool
) -> None:
    s, _, _ = services
    async with pool.acquire() as c:
        await c.execute(
            "INSERT INTO retrain_runs (model, trigger, status) VALUES ('ctr', 'command', 'running')"
        )
    async with pool.acquire() as owner:  # a live run holds its model's lease
        assert await retrain_sql.try_run_lock(owner, "ctr")
        await s.retrain.housekeeping()
        assert [r["status"] for r in await fetch(pool, "SELECT status FROM retrain_runs")] == [
            "running"
        ]
        await retrain_sql.run_unlock(owner, "ctr")
    await s.retrain.housekeeping()  # its worker is gone: the lease is free
    runs = await fetch(pool, "SELECT status, error FROM retrain_runs")
    assert runs[0]["status"] == "failed" and "abandoned" in runs[0]["error"]


async def test_a_command_accepted_by_a_worker_that_died_is_finished_on_redelivery(
    services: tuple[Services, CollectingPublisher, Settings], pool: asyncpg.Pool
) -> None:
    s, _, settings = services
    raw = command_raw(settings, PauseModel(model="ctr", issued_by="alice"))
    pause = PauseModel.model_validate_json(raw.value)
    async with pool.acquire() as c:  # what a worker that died right after accepting leaves
        await control_sql.record(c, pause, pause.model_dump(mode="json"))
    result = await s.control.handle(raw)
    assert result is not None and (result.status, result.replayed) == ("done", False)
    paused = await fetch(pool, "SELECT paused FROM model_controls WHERE model = 'ctr'")
    assert paused[0]["paused"] is True
    again = await s.control.handle(raw)
    assert again is not None and again.replayed and again.status == "done"


async def test_a_command_signed_by_hand_with_another_jcs_library_is_accepted(
    services: tuple[Services, CollectingPublisher, Settings], pool: asyncpg.Pool
) -> None:
    """What a producer in another language does: write the JSON with only the fields it
    needs, sign RFC 8785 canonical JSON with HMAC-SHA256 (here the independent `jcs`
    package, not the project's code), send. The worker pauses the model."""
    s, _, settings = services
    body = {
        "command": "pause",
        "event_id": str(uuid.uuid4()),
        "model": "ctr",
        "issued_by": "ops-go-client",
        "issued_at": datetime.now(UTC).isoformat(),
        "reason": "maintenance window: naïve café ☕",
    }
    key = signing_key(settings)
    body["signature"] = hmac.new(key, jcs.canonicalize(body), hashlib.sha256).hexdigest()
    # Member order and spacing on the wire do not matter: JCS fixes them when verifying.
    wire = json.dumps(dict(reversed(list(body.items()))), indent=2, ensure_ascii=True).encode()
    result = await s.control.handle(RawMessage(settings.topics.control, 0, 5, None, wire))
    assert result is not None and result.status == "done", result
    paused = await fetch(pool, "SELECT paused FROM model_controls WHERE model = 'ctr'")
    assert paused[0]["paused"] is True

    # The same body with one character changed after signing is refused.
    tampered = {**body, "reason": body["reason"] + "!", "event_id": str(uuid.uuid4())}
    refused = await s.control.handle(
        RawMessage(settings.topics.control, 0, 6, None, json.dumps(tampered).encode())
    )
    assert refused is not None and refused.status == "refused"
    assert "signature does not match" in refused.detail


async def test_a_command_without_an_event_id_is_dead_lettered_not_run(
    services: tuple[Services, CollectingPublisher, Settings], pool: asyncpg.Pool
) -> None:
    """The event id is the command id: without one a redelivery would act twice."""
    s, _, settings = services
    body: dict[str, Any] = {
        "command": "pause",
        "model": "ctr",
        "issued_by": "ops",
        "issued_at": datetime.now(UTC).isoformat(),
    }
    body["signature"] = hmac.new(
        signing_key(settings), jcs.canonicalize(body), hashlib.sha256
    ).hexdigest()
    raw = RawMessage(settings.topics.control, 0, 7, None, json.dumps(body).encode())
    assert await s.control.handle(raw) is None
    dead = await fetch(pool, "SELECT error_type, reason FROM dead_letters")
    assert [d["error_type"] for d in dead] == ["invalid_command"]
    assert "event_id is required" in dead[0]["reason"]
    paused = await fetch(pool, "SELECT paused FROM model_controls WHERE model = 'ctr'")
    assert not paused or paused[0]["paused"] is False
