"""Challengers inside the monitor, on a real PostgreSQL: ahead events, snapshots side by
side, and a restart that resumes them from their checkpoints."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import asyncpg
import numpy as np
import pytest

from schemas import ChallengerAhead, OutcomeObserved, PredictionMade
from schemas.base import utc_now
from tests.conftest import SettingsFactory
from tests.integration.fakes import CollectingPublisher, CollectingSink
from workers.ingest.decode import RawMessage
from workers.ingest.service import IngestService
from workers.monitor import sql as monitor_sql
from workers.monitor.service import MonitorService
from workers.monitor.status import summary
from workers.settings import ModelConfig, MonitorConfig, MonitoringConfig, Settings, ShadowConfig
from workers.shadow import challengers

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    cfg = ModelConfig(
        horizon_seconds=3600,
        monitor=MonitorConfig(count_windows=(100,), time_windows_seconds=(), error_detector="none"),
        # No rate budget: these tests count every example learned, and 2,400 of them
        # arrive faster than 1,000 a second (the default) when the machine is quick.
        shadow=ShadowConfig(
            challengers=("linear",),
            window=300,
            min_examples=300,
            margin=0.1,
            checkpoint_every=200,
            max_learn_per_second=1e9,
        ),
    )
    return make_settings(
        models={"ctr": cfg}, monitoring=MonitoringConfig(snapshot_interval_seconds=0.001)
    )


async def send(settings: Settings, pool: asyncpg.Pool, start: int, n: int, drift_at: int) -> None:
    rng = np.random.default_rng(start)
    now = utc_now()
    raws = []
    for i in range(start, start + n):
        x = float(rng.normal())
        slope = 0.3 if i < drift_at else -0.3
        label = 0.5 + slope * x + float(rng.normal(0, 0.02))
        p = PredictionMade(
            prediction_id=f"p{i}",
            model="ctr",
            model_version="v1",
            features={"x": x, "channel": "ab"[i % 2]},
            prediction=0.5 + 0.3 * x,
            predicted_at=now - timedelta(minutes=5),
        )
        o = OutcomeObserved(
            prediction_id=p.prediction_id,
            outcome_kind="measured",
            value=label,
            observed_at=now - timedelta(minutes=1),
        )
        raws += [
            RawMessage(settings.topics.predictions, 0, 2 * i, None, p.to_bytes()),
            RawMessage(settings.topics.outcomes, 0, 2 * i + 1, None, o.to_bytes()),
        ]
    await IngestService(settings, pool, CollectingSink()).handle(raws)


async def test_a_better_challenger_raises_challenger_ahead_and_is_recorded(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    publisher = CollectingPublisher()
    monitor = MonitorService(settings, pool, publisher)
    await monitor.tick_quality()
    for chunk in range(12):
        await send(settings, pool, chunk * 200, 200, drift_at=800)
        await monitor.tick_quality()
    ahead = publisher.of_type(ChallengerAhead)
    assert len(ahead) == 1
    event = ahead[0]
    assert event.challenger == "linear"  # type: ignore[attr-defined]
    assert event.challenger_value < event.champion_value  # type: ignore[attr-defined]
    async with pool.acquire() as c:
        sides = await c.fetch(
            "SELECT DISTINCT ON (model_version) model_version, value, n FROM quality_snapshots"
            " WHERE window_name = 'shadow_300' ORDER BY model_version, id DESC"
        )
    by_side = {r["model_version"]: r for r in sides}
    assert set(by_side) == {"challenger:linear", "champion-vs:linear"}
    assert by_side["challenger:linear"]["n"] == by_side["champion-vs:linear"]["n"] == 2400


async def test_under_load_the_monitor_reads_features_only_for_what_challengers_learn(
    settings: Settings, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While ingestion is behind, challengers learn within a sliver of a core: the
    monitor reads the features of about that many examples, not of every one."""
    read: list[int] = []
    features_by_seq = monitor_sql.features_by_seq

    async def counted(conn: Any, seqs: Sequence[int]) -> dict[int, dict[str, Any]]:
        read.extend(seqs)
        return await features_by_seq(conn, seqs)

    monkeypatch.setattr(monitor_sql, "features_by_seq", counted)
    monitor = MonitorService(settings, pool, CollectingPublisher())
    await monitor.tick_quality()
    shadow = monitor.shadows["ctr"]
    assert shadow.cfg.shadow.busy_cpu_share == 0.02  # the numbers below follow from it
    shadow.busy = True  # as the lag probe sets it: learn within busy_cpu_share
    # Learning costs 15 ms of CPU an example, and the budget refills only when the test
    # moves the clock, so what is learned follows from the budget alone.
    shadow.cpu_clock = lambda: shadow.challengers["linear"].learned * 0.015
    now = [1000.0]
    shadow.clock = lambda: now[0]
    sent = 2000
    await send(settings, pool, 0, sent, drift_at=10_000)
    await monitor.tick_quality()
    learned = shadow.challengers["linear"].learned
    # Two seconds of 0.02 of a core is a burst of 0.04 s: 3 examples at 15 ms (the last
    # one is learned while the budget is still positive, 0.01 s).
    assert learned == 3, learned
    # What one costs was not known yet, so every example's features were read, once.
    assert sorted(read) == list(range(1, sent + 1)), len(read)
    # Now it is known. 1.5 s later the budget is -0.005 + 1.5 x 0.02 = 0.025 s: two more
    # examples, and the monitor reads the features of twice that many, not of 2,000.
    read.clear()
    now[0] += 1.5
    await send(settings, pool, 2000, 2000, drift_at=10_000)
    await monitor.tick_quality()
    more = shadow.challengers["linear"].learned - learned
    assert more == 2, more
    assert len(read) == 2 * more, len(read)
    assert learned + more + shadow.skipped == 4000


async def test_a_restart_resumes_challengers_from_their_checkpoint(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    first = MonitorService(settings, pool, CollectingPublisher())
    await first.tick_quality()
    await send(settings, pool, 0, 500, drift_at=10_000)
    await first.tick_quality()
    before = first.shadows["ctr"].challengers["linear"]
    async with pool.acquire() as c:
        saved = await c.fetchrow("SELECT learned, seq FROM challenger_checkpoints")
    assert saved is not None and saved["learned"] == 500

    second = MonitorService(settings, pool, CollectingPublisher())
    await second.tick_quality()
    after = second.shadows["ctr"].challengers["linear"]
    assert after.learned == 500 and after.seq == before.seq
    probe = challengers.encode({"x": 0.7, "channel": "b"}, "linear")
    assert after.model.predict_one(probe) == pytest.approx(before.model.predict_one(probe))
    # It goes on learning from where it stopped, not from scratch.
    await send(settings, pool, 500, 100, drift_at=10_000)
    await second.tick_quality()
    assert second.shadows["ctr"].challengers["linear"].learned == 600


async def test_a_tampered_checkpoint_is_refused(
    settings: Settings, pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    first = MonitorService(settings, pool, CollectingPublisher())
    await first.tick_quality()
    await send(settings, pool, 0, 300, drift_at=10_000)
    await first.tick_quality()
    async with pool.acquire() as c:
        await c.execute("UPDATE challenger_checkpoints SET state = state || '\\x00'::bytea")
    second = MonitorService(settings, pool, CollectingPublisher())
    await second.tick_quality()
    assert "ctr/linear starts cold: checkpoint signature mismatch" in caplog.text
    # Cold: it learned again only from the history the monitor warms up with.
    assert second.shadows["ctr"].challengers["linear"].learned < 300


async def test_status_shows_challengers_beside_the_champion(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    monitor = MonitorService(settings, pool, CollectingPublisher())
    await monitor.tick_quality()
    await send(settings, pool, 0, 400, drift_at=10_000)
    await monitor.tick_quality()
    async with pool.acquire() as c:
        body = await summary(c, utc_now())
    linear = body["models"]["ctr"]["challengers"]["linear"]
    mine, champ, n = monitor.shadows["ctr"].standings()["linear"]
    assert (linear["challenger"], linear["champion"], linear["n"]) == (
        pytest.approx(mine),
        pytest.approx(champ),
        n,
    )
    assert set(body["models"]["ctr"]["versions"]) == {"v1"}
