"""Rolling quality, alerts and drift against a real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import numpy as np
import pytest

from schemas import DriftDetected, Message, OutcomeObserved, PredictionMade, QualityAlertRaised
from schemas.base import utc_now
from tests.conftest import SettingsFactory
from tests.integration.fakes import CollectingPublisher, CollectingSink
from workers.ingest.decode import RawMessage
from workers.ingest.service import IngestService
from workers.monitor.service import MonitorService
from workers.monitor.status import summary
from workers.registry.service import Registry
from workers.settings import (
    AlertRule,
    DriftConfig,
    ModelConfig,
    MonitorConfig,
    MonitoringConfig,
    Settings,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    monitor = MonitorConfig(
        count_windows=(200,),
        time_windows_seconds=(3600,),
        segments=("channel",),
        alerts=(AlertRule(metric="mae", window="last_200", above=0.02),),
        drift=DriftConfig(reference_size=500, window_size=500, min_samples=100),
    )
    return make_settings(
        models={"ctr": ModelConfig(horizon_seconds=3600, monitor=monitor)},
        monitoring=MonitoringConfig(snapshot_interval_seconds=0.001),
    )


async def ingest(settings: Settings, pool: asyncpg.Pool, events: list[object]) -> None:
    service = IngestService(settings, pool, CollectingSink())
    t = settings.topics
    raws = []
    for i, e in enumerate(events):
        topic = t.predictions if isinstance(e, PredictionMade) else t.outcomes
        raws.append(RawMessage(topic, 0, i, None, e.to_bytes()))  # type: ignore[attr-defined]
    await service.handle(raws)


def labeled_pairs(n: int, error: float, start: int = 0) -> list[object]:
    now = utc_now()
    rng = np.random.default_rng(start)
    events: list[object] = []
    for i in range(start, start + n):
        p = PredictionMade(
            prediction_id=f"p{i}",
            model="ctr",
            model_version="v1",
            features={"channel": "search" if i % 2 else "social", "x": float(rng.normal())},
            prediction=0.05,
            predicted_at=now - timedelta(seconds=60),
        )
        value = 0.05 + float(rng.uniform(-2, 2)) * error
        events += [
            p,
            OutcomeObserved(
                prediction_id=p.prediction_id,
                outcome_kind="measured",
                value=value,
                observed_at=now - timedelta(seconds=30),
            ),
        ]
    return events


async def latest(pool: asyncpg.Pool, metric: str, segment: str = "") -> asyncpg.Record:
    async with pool.acquire() as c:
        row = await c.fetchrow(
            "SELECT value, n, reason FROM quality_snapshots WHERE metric = $1 AND segment = $2"
            " AND window_name = 'last_200' ORDER BY id DESC LIMIT 1",
            metric,
            segment,
        )
    assert row is not None
    return row


async def direct_mae(pool: asyncpg.Pool, last: int, where: str = "true") -> float:
    async with pool.acquire() as c:
        return float(
            await c.fetchval(
                f"SELECT avg(abs(prediction - label)) FROM (SELECT * FROM labeled_examples"
                f" WHERE {where} ORDER BY matured_seq DESC LIMIT {last}) recent"
            )
        )


async def test_rolling_mae_in_postgres_matches_a_direct_computation(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    publisher = CollectingPublisher()
    monitor = MonitorService(settings, pool, publisher)
    assert await monitor.tick_quality() == 0  # warm start on an empty table
    await ingest(settings, pool, labeled_pairs(300, error=0.005))
    assert await monitor.tick_quality() == 300
    row = await latest(pool, "mae")
    assert row["n"] == 200
    assert row["value"] == pytest.approx(await direct_mae(pool, 200))
    social = await latest(pool, "mae", "channel=social")
    assert social["value"] == pytest.approx(
        await direct_mae(pool, 200, "features->>'channel' = 'social'")
    )
    assert publisher.of_type(QualityAlertRaised) == []

    # The error quadruples: the rule (MAE above 0.02 over the last 200) fires once.
    await ingest(settings, pool, labeled_pairs(250, error=0.04, start=1000))
    await monitor.tick_quality()
    alerts = publisher.of_type(QualityAlertRaised)
    assert len(alerts) == 1
    assert alerts[0].value == pytest.approx(await direct_mae(pool, 200))  # type: ignore[attr-defined]
    assert (await latest(pool, "mae"))["value"] == pytest.approx(await direct_mae(pool, 200))
    await ingest(settings, pool, labeled_pairs(50, error=0.04, start=2000))
    await monitor.tick_quality()
    assert len(publisher.of_type(QualityAlertRaised)) == 1  # still the same episode

    # A fresh monitor (a restart, a new leader) rebuilds its windows from PostgreSQL.
    restarted = MonitorService(settings, pool, CollectingPublisher())
    await restarted.tick_quality()
    assert (await latest(pool, "mae"))["value"] == pytest.approx(await direct_mae(pool, 200))


async def drift_run(
    settings: Settings, pool: asyncpg.Pool, shift_at: int | None
) -> list[tuple[int, DriftDetected]]:
    """Send 3000 predictions in chunks, checking drift after each; x shifts at `shift_at`."""
    publisher = CollectingPublisher()
    monitor = MonitorService(settings, pool, publisher)
    rng = np.random.default_rng(11)
    start = utc_now() - timedelta(hours=1)
    raised: list[tuple[int, DriftDetected]] = []
    for chunk in range(30):
        events: list[object] = []
        for i in range(chunk * 100, chunk * 100 + 100):
            shifted = shift_at is not None and i >= shift_at
            events.append(
                PredictionMade(
                    prediction_id=f"d{i}",
                    model="ctr",
                    model_version="v1",
                    features={
                        "x": float(rng.normal(1.0 if shifted else 0.0, 1.0)),
                        "channel": ["search", "social", "display"][int(rng.integers(3))],
                    },
                    prediction=float(rng.uniform(0, 0.1)),
                    predicted_at=start + timedelta(seconds=i),
                )
            )
        await ingest(settings, pool, events)
        before = len(publisher.sent)
        await monitor.drift.tick()
        raised += [(chunk * 100 + 100, e) for _, e in publisher.sent[before:]]  # type: ignore[misc]
    return raised


async def test_a_shift_raises_exactly_one_episode_soon_after(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    raised = await drift_run(settings, pool, shift_at=2000)
    assert [(e.feature, e.method) for _, e in raised] == [("x", "ks")]
    seen_after, event = raised[0]
    assert 2000 < seen_after <= 2300  # within three checks of the shift
    assert event.n_reference == 500 and event.n_current == 500
    assert event.statistic > event.threshold
    async with pool.acquire() as c:
        episodes = await c.fetchval("SELECT count(*) FROM drift_stats WHERE episode_start")
        checks = await c.fetchval("SELECT count(DISTINCT computed_at) FROM drift_stats")
    assert episodes == 1 and checks >= 20


async def test_a_stationary_stream_raises_none(settings: Settings, pool: asyncpg.Pool) -> None:
    assert await drift_run(settings, pool, shift_at=None) == []
    async with pool.acquire() as c:
        rows = await c.fetchval("SELECT count(*) FROM drift_stats WHERE feature = 'x'")
    assert rows >= 20  # it did look, every time


async def test_a_registered_version_is_compared_with_its_training_data(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    """No need to wait for a traffic reference: the registry knows what it was trained on."""
    await ingest(settings, pool, labeled_pairs(600, error=0.005))  # x ~ N(0, 1), version v1
    async with pool.acquire() as c:
        t0, t1 = await c.fetchrow(
            "SELECT min(predicted_at), max(predicted_at) FROM labeled_examples"
        )
    await Registry(pool).register(
        model="ctr",
        version="r9",
        status="candidate",
        kind="lightgbm",
        card={"training_window": {"train": {"from": t0.isoformat(), "to": t1.isoformat()}}},
    )
    rng = np.random.default_rng(5)
    shifted = [
        PredictionMade(
            prediction_id=f"r9-{i}",
            model="ctr",
            model_version="r9",
            features={"channel": "search" if i % 2 else "social", "x": float(rng.normal(1.5, 1.0))},
            prediction=0.05,
        )
        for i in range(300)  # fewer than reference_size: no traffic reference yet
    ]
    await ingest(settings, pool, shifted)
    publisher = CollectingPublisher()
    monitor = MonitorService(settings, pool, publisher)
    raised = await monitor.drift.tick()
    on_r9 = [(e.model_version, e.feature) for e in raised if e.model_version == "r9"]
    assert on_r9 == [("r9", "x")]
    event = next(e for e in raised if e.model_version == "r9")
    assert event.n_reference == 500 and event.n_current == 300


async def test_classifiers_get_an_estimated_accuracy_before_labels_arrive(
    make_settings: SettingsFactory, pool: asyncpg.Pool
) -> None:
    settings = make_settings(
        models={
            "buy": ModelConfig(
                task="binary", horizon_seconds=3600, monitor=MonitorConfig(count_windows=(100,))
            )
        },
        monitoring=MonitoringConfig(snapshot_interval_seconds=0.001),
    )
    probabilities = [0.9, 0.2, 0.6, 0.95] * 25  # confidence 0.9, 0.8, 0.6, 0.95
    await ingest(
        settings,
        pool,
        [
            PredictionMade(prediction_id=f"b{i}", model="buy", model_version="v1", prediction=p)
            for i, p in enumerate(probabilities)
        ],
    )
    await MonitorService(settings, pool, CollectingPublisher()).tick_quality()
    async with pool.acquire() as c:
        row = await c.fetchrow(
            "SELECT value, n FROM quality_snapshots WHERE metric = 'estimated_accuracy'"
        )
    assert row is not None and row["n"] == 100
    assert row["value"] == pytest.approx((0.9 + 0.8 + 0.6 + 0.95) / 4)


class FlakyPublisher(CollectingPublisher):
    """Refuses the first `failures` publishes, as a broker outage would."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def publish(self, topic: str, event: Message, key: str | None = None) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("broker unreachable")
        await super().publish(topic, event, key)


async def test_an_alert_that_could_not_be_sent_is_raised_again(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    publisher = FlakyPublisher(failures=1)
    monitor = MonitorService(settings, pool, publisher)
    await monitor.tick_quality()
    await ingest(settings, pool, labeled_pairs(250, error=0.04))
    with pytest.raises(ConnectionError):
        await monitor.tick_quality()
    assert publisher.of_type(QualityAlertRaised) == []
    await monitor.tick_quality()  # the broker is back: the same episode's alert goes out
    assert len(publisher.of_type(QualityAlertRaised)) == 1
    await monitor.tick_quality()
    assert len(publisher.of_type(QualityAlertRaised)) == 1


async def test_a_drift_alert_that_could_not_be_sent_is_raised_again(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    await ingest(settings, pool, labeled_pairs(600, error=0.005))  # the reference: x ~ N(0, 1)
    rng = np.random.default_rng(9)
    await ingest(
        settings,
        pool,
        [
            PredictionMade(
                prediction_id=f"s{i}",
                model="ctr",
                model_version="v1",
                prediction=0.05,
                features={"channel": "search" if i % 2 else "social", "x": float(rng.normal(2, 1))},
            )
            for i in range(400)
        ],
    )
    publisher = FlakyPublisher(failures=1)
    monitor = MonitorService(settings, pool, publisher)
    # The publish fails: the check is logged and counted, not raised (other models go on).
    assert await monitor.drift.tick() == []
    raised = await monitor.drift.tick()
    assert [(e.feature, e.model_version) for e in raised] == [("x", "v1")]
    assert len(publisher.of_type(DriftDetected)) == 1


async def test_status_counts_each_models_predictions_by_state(
    make_settings: SettingsFactory, pool: asyncpg.Pool
) -> None:
    """/status counts per table; the prediction_status view, read whole, is the reference."""
    settings = make_settings(
        models={
            "ctr": ModelConfig(horizon_seconds=3600),
            "price": ModelConfig(horizon_seconds=60, no_outcome="negative"),
            "churn": ModelConfig(horizon_seconds=60),  # no_outcome "drop"
        }
    )
    now = utc_now()
    events: list[object] = []
    for model, n, with_outcome in (("ctr", 5, 3), ("price", 4, 1), ("churn", 3, 1)):
        for i in range(n):
            p = PredictionMade(
                prediction_id=f"{model}-{i}",
                model=model,
                model_version="v1",
                features={"x": float(i)},
                prediction=0.5,
                predicted_at=now - timedelta(seconds=30),
            )
            events.append(p)
            if i < with_outcome:
                events.append(
                    OutcomeObserved(
                        prediction_id=p.prediction_id,
                        outcome_kind="measured",
                        value=1.0,
                        observed_at=now - timedelta(seconds=10),
                    )
                )
    await ingest(settings, pool, events)
    # Past the 60 s horizons: price's unlabeled ones mature as negatives, churn's drop.
    later = IngestService(
        settings, pool, CollectingSink(), clock=lambda: utc_now() + timedelta(minutes=5)
    )
    await later.sweep()

    async with pool.acquire() as c:
        shown = (await summary(c, utc_now()))["models"]
        reference = await c.fetch(
            "SELECT model, count(*) AS predictions,"
            " count(*) FILTER (WHERE resolution IS NULL) AS pending,"
            " count(*) FILTER (WHERE resolution IN ('outcome', 'feedback', 'no_outcome'))"
            " AS labeled FROM prediction_status GROUP BY model"
        )
    counts = {m: (v["predictions"], v["pending"], v["labeled"]) for m, v in shown.items()}
    assert counts == {"ctr": (5, 2, 3), "price": (4, 0, 4), "churn": (3, 0, 1)}
    assert counts == {r["model"]: (r["predictions"], r["pending"], r["labeled"]) for r in reference}
