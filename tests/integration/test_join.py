"""The join and maturation rules, on a real PostgreSQL, through the ingest service.

Messages go in as bytes exactly as the agent hands them over; only the dead-letter
publisher is a hand-written fake (the Kafka side is covered in test_worker.py).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from schemas import FeedbackGiven, Message, OutcomeObserved, PredictionMade
from tests.conftest import SettingsFactory, pending_counts_wrong
from tests.integration.fakes import CollectingSink
from workers.ingest.decode import RawMessage
from workers.ingest.service import IngestService
from workers.ingest.sql import DeadLetterRow
from workers.settings import ModelConfig, Settings

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Harness:
    def __init__(self, settings: Settings, pool: asyncpg.Pool) -> None:
        self.settings = settings
        self.pool = pool
        self.clock = Clock(T0 + timedelta(minutes=1))
        self.sink = CollectingSink()
        self.service = IngestService(settings, pool, self.sink, clock=self.clock)
        self._offsets = itertools.count()

    def raw(self, event: Message | bytes, topic: str | None = None) -> RawMessage:
        t = self.settings.topics
        if topic is None:
            topic = {
                PredictionMade: t.predictions,
                OutcomeObserved: t.outcomes,
                FeedbackGiven: t.feedback,
            }[type(event)]  # type: ignore[index]
        value = event if isinstance(event, bytes) else event.to_bytes()
        return RawMessage(topic, 0, next(self._offsets), None, value)

    async def send(self, *events: Message | bytes, topic: str | None = None) -> Any:
        return await self.service.handle([self.raw(e, topic) for e in events])

    async def example(self, prediction_id: str) -> asyncpg.Record | None:
        async with self.pool.acquire() as c:
            return await c.fetchrow(
                "SELECT * FROM labeled_examples WHERE prediction_id = $1", prediction_id
            )

    async def scalar(self, query: str, *args: Any) -> Any:
        async with self.pool.acquire() as c:
            return await c.fetchval(query, *args)


@pytest.fixture
def harness(make_settings: SettingsFactory, pool: asyncpg.Pool) -> Harness:
    return Harness(make_settings(), pool)


@pytest.fixture(autouse=True)
async def pending_counts_follow(pool: asyncpg.Pool) -> AsyncIterator[None]:
    """Whatever moves a test made, the kept pending counts followed them."""
    yield
    assert await pending_counts_wrong(pool) == []


def pred(
    pid: str,
    *,
    model: str = "ctr",
    entity: str | None = None,
    at: datetime = T0,
    score: float = 0.05,
) -> PredictionMade:
    return PredictionMade(
        prediction_id=pid,
        model=model,
        model_version="v1",
        entity_id=entity,
        features={"channel": "search", "bid": 1.0},
        prediction=score,
        predicted_at=at,
    )


def outcome(
    pid: str | None = None,
    *,
    entity: str | None = None,
    value: float = 0.04,
    at: datetime = T0 + timedelta(seconds=30),
    model: str | None = None,
) -> OutcomeObserved:
    return OutcomeObserved(
        prediction_id=pid,
        entity_id=entity,
        model=model,
        outcome_kind="measured",
        value=value,
        observed_at=at,
    )


def feedback(pid: str, label: float, at: datetime = T0 + timedelta(seconds=40)) -> FeedbackGiven:
    return FeedbackGiven(prediction_id=pid, label=label, source="human", given_at=at)


async def test_prediction_then_outcome_matures_with_the_outcome(harness: Harness) -> None:
    await harness.send(pred("a"))
    assert await harness.example("a") is None  # pending until its outcome arrives
    o = outcome("a", value=0.04)
    result = await harness.send(o)
    ex = await harness.example("a")
    assert ex is not None and result.matured.labeled == 1
    assert (ex["label"], ex["label_source"], ex["label_event_id"]) == (0.04, "outcome", o.event_id)
    assert ex["features"] == {"channel": "search", "bid": 1.0}
    assert ex["labeled_at"] == o.observed_at and ex["predicted_at"] == T0


async def test_outcome_before_prediction_gives_the_same_example(
    make_settings: SettingsFactory, pool: asyncpg.Pool
) -> None:
    p, o = pred("a"), outcome("a")
    first = Harness(make_settings(), pool)
    await first.send(o)
    await first.send(p)
    reversed_order = dict(await first.example("a"))  # type: ignore[arg-type]
    async with pool.acquire() as c:
        await c.execute("TRUNCATE labeled_examples, predictions, outcomes, feedback")
    second = Harness(make_settings(), pool)
    await second.send(p)
    await second.send(o)
    in_order = dict(await second.example("a"))  # type: ignore[arg-type]
    for row in (reversed_order, in_order):
        row.pop("matured_at"), row.pop("updated_at"), row.pop("matured_seq")
    assert reversed_order == in_order


async def test_duplicates_and_redelivery_change_nothing(harness: Harness) -> None:
    p, o, f = pred("a"), outcome("a"), feedback("a", 0.5)
    await harness.send(p, o, f)
    before = dict(await harness.example("a"))  # type: ignore[arg-type]
    result = await harness.send(p, o, f, p, o)  # the same events, redelivered twice
    assert result.matured.labeled == 0 and result.matured.relabeled == 0
    assert dict(await harness.example("a")) == before  # type: ignore[arg-type]
    assert await harness.scalar("SELECT count(*) FROM outcomes") == 1
    # New, but twice in one batch: the direct COPY of outcomes fails, the staged one merges
    o2 = outcome("b", value=0.03)
    result = await harness.send(pred("b"), o2, o2)
    assert result.matured.labeled == 1 and await harness.example("b") is not None
    assert await harness.scalar("SELECT count(*) FROM outcomes") == 2
    assert harness.sink.rows == []  # a redelivery is not a conflict


async def test_conflicting_prediction_id_is_dead_lettered(harness: Harness) -> None:
    await harness.send(pred("a", score=0.1))
    impostor = pred("a", score=0.9)
    await harness.send(impostor)
    assert [r.error_type for r in harness.sink.rows] == ["conflicting_duplicate"]
    assert harness.sink.rows[0].payload == impostor.to_bytes()
    assert await harness.scalar("SELECT prediction FROM predictions WHERE prediction_id='a'") == 0.1


async def test_horizon_passing_matures_per_model_policy(harness: Harness) -> None:
    await harness.send(pred("c1", model="ctr"), pred("p1", model="purchase", entity="u1"))
    assert (await harness.service.sweep()).labeled == 0  # horizons are an hour away
    harness.clock.now = T0 + timedelta(hours=1, seconds=1)
    counts = await harness.service.sweep()
    assert counts.labeled == 1 and counts.dropped == 1
    # purchase: no purchase means a negative; ctr: no measurement means the prediction is dropped
    neg = await harness.example("p1")
    assert neg is not None and (neg["label"], neg["label_source"]) == (0.0, "no_outcome")
    assert await harness.example("c1") is None
    assert (
        await harness.scalar("SELECT resolution FROM prediction_status WHERE prediction_id = 'c1'")
        == "dropped"
    )
    assert (await harness.service.sweep()).labeled == 0  # nothing left: idempotent


async def test_outcome_after_the_horizon_does_not_label(harness: Harness) -> None:
    await harness.send(pred("p", model="purchase", entity="u"))
    await harness.send(outcome(entity="u", model="purchase", value=1.0, at=T0 + timedelta(hours=2)))
    harness.clock.now = T0 + timedelta(hours=3)
    await harness.service.sweep()
    ex = await harness.example("p")
    assert ex is not None and ex["label_source"] == "no_outcome"


async def test_feedback_overrides_the_outcome_in_either_order(harness: Harness) -> None:
    await harness.send(pred("a"), pred("b"))
    await harness.send(outcome("a", value=0.04))
    await harness.send(feedback("a", 0.07))
    await harness.send(feedback("b", 0.07))
    await harness.send(outcome("b", value=0.04))
    for pid in ("a", "b"):
        ex = await harness.example(pid)
        assert ex is not None and (ex["label"], ex["label_source"]) == (0.07, "feedback")


async def test_outcome_wins_when_configured(
    make_settings: SettingsFactory, pool: asyncpg.Pool
) -> None:
    models = {"ctr": ModelConfig(horizon_seconds=3600, label_precedence=("outcome", "feedback"))}
    h = Harness(make_settings(models=models), pool)
    await h.send(pred("a"), feedback("a", 0.07))
    ex = await h.example("a")
    assert ex is not None and ex["label_source"] == "feedback"  # the only label so far
    await h.send(outcome("a", value=0.04))
    ex = await h.example("a")
    assert ex is not None and (ex["label"], ex["label_source"]) == (0.04, "outcome")


async def test_entity_outcome_goes_to_the_latest_prediction_before_it(harness: Harness) -> None:
    await harness.send(
        pred("old", model="purchase", entity="u", at=T0),
        pred("new", model="purchase", entity="u", at=T0 + timedelta(seconds=10)),
        pred("after", model="purchase", entity="u", at=T0 + timedelta(seconds=50)),
        pred("other", model="purchase", entity="v", at=T0 + timedelta(seconds=20)),
    )
    await harness.send(outcome(entity="u", value=1.0, at=T0 + timedelta(seconds=30)))
    labeled = await harness.scalar("SELECT array_agg(prediction_id) FROM labeled_examples")
    assert labeled == ["new"]


async def test_late_prediction_takes_over_an_entity_outcome(harness: Harness) -> None:
    """Arrival order must not matter: a prediction logged late still gets its outcome."""
    await harness.send(pred("old", model="purchase", entity="u", at=T0))
    await harness.send(outcome(entity="u", value=1.0, at=T0 + timedelta(seconds=30)))
    assert (await harness.example("old")) is not None
    await harness.send(pred("new", model="purchase", entity="u", at=T0 + timedelta(seconds=10)))
    new = await harness.example("new")
    assert new is not None and new["label"] == 1.0
    assert await harness.example("old") is None  # pending again until its own horizon
    assert (
        await harness.scalar("SELECT matured_at FROM prediction_status WHERE prediction_id = 'old'")
        is None
    )


REFUSE_CHANGES = """
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '% on predictions: they are insert-only', TG_OP; END $$;
CREATE TRIGGER insert_only BEFORE UPDATE OR DELETE ON predictions
FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
"""

# Where each prediction's state is kept: every prediction is in exactly one place.
STATES = """
SELECT p.prediction_id,
       (SELECT count(*) FROM pending_predictions q WHERE q.prediction_id = p.prediction_id)
       + (SELECT count(*) FROM labeled_examples l WHERE l.prediction_id = p.prediction_id)
       + (SELECT count(*) FROM dropped_predictions d WHERE d.prediction_id = p.prediction_id)
       AS places,
       s.resolution
FROM predictions p JOIN prediction_status s USING (prediction_id)
ORDER BY 1
"""


async def test_predictions_are_never_updated_and_each_is_in_one_state(harness: Harness) -> None:
    """Every move a prediction can make (labeled, relabeled, pending again, dropped,
    labeled after being dropped) leaves its row as inserted; its state is in exactly one
    of pending_predictions, labeled_examples or dropped_predictions."""
    async with harness.pool.acquire() as c:
        await c.execute(REFUSE_CHANGES)
    await harness.send(pred("a"), outcome("a"))  # labeled by its outcome
    await harness.send(feedback("a", 0.07))  # relabeled by feedback
    await harness.send(pred("old", model="purchase", entity="u", at=T0))
    await harness.send(outcome(entity="u", value=1.0, at=T0 + timedelta(seconds=30)))
    assert await harness.example("old") is not None
    # a later prediction for the entity takes the outcome: "old" is pending again
    await harness.send(pred("new", model="purchase", entity="u", at=T0 + timedelta(seconds=10)))
    await harness.send(pred("c1"))
    harness.clock.now = T0 + timedelta(hours=1, seconds=1)
    await harness.send(pred("z", at=T0 + timedelta(hours=1)))  # its horizon is an hour away
    swept = await harness.service.sweep()
    assert (swept.labeled, swept.dropped) == (1, 1)  # "old" a negative, "c1" dropped
    await harness.send(feedback("c1", 0.02))  # a label for the dropped prediction after all
    async with harness.pool.acquire() as c:
        rows = await c.fetch(STATES)
    assert {r["prediction_id"]: r["places"] for r in rows} == dict.fromkeys(
        ("a", "c1", "new", "old", "z"), 1
    )
    assert {r["prediction_id"]: r["resolution"] for r in rows} == {
        "a": "feedback",
        "c1": "feedback",
        "new": "outcome",
        "old": "no_outcome",
        "z": None,
    }
    assert await harness.scalar("SELECT count(*) FROM dropped_predictions") == 0


async def test_outcome_long_before_its_prediction_is_dead_lettered(harness: Harness) -> None:
    early = outcome("a", at=T0 - timedelta(hours=1))
    await harness.send(pred("a"), early)
    assert await harness.example("a") is None
    assert [r.error_type for r in harness.sink.rows] == ["impossible_time"]
    assert harness.sink.rows[0].payload == early.to_bytes()
    assert "before its prediction" in harness.sink.rows[0].reason
    # The reverse order: the outcome is stored first, rejected when its prediction shows up.
    early_b = outcome("b", at=T0 - timedelta(hours=1))
    await harness.send(early_b)
    await harness.send(pred("b"))
    assert len(harness.sink.rows) == 2
    assert OutcomeObserved.model_validate_json(harness.sink.rows[1].payload) == early_b
    assert await harness.scalar("SELECT count(*) FROM dead_letters") == 2


async def test_an_impossible_outcome_never_labels_and_is_dead_lettered_once(
    harness: Harness,
) -> None:
    """Rejection and labelling happen in one statement: the label must skip the outcome
    being rejected, in either arrival order, and a redelivery must not reject it again."""
    early, good = outcome("a", at=T0 - timedelta(hours=1), value=9.0), outcome("a", value=0.5)
    pa = pred("a")
    await harness.send(early, good, pa)
    row = await harness.example("a")
    assert row is not None and row["label"] == 0.5 and row["label_event_id"] == good.event_id
    early_b, good_b = outcome("b", at=T0 - timedelta(hours=1), value=9.0), outcome("b", value=0.7)
    await harness.send(pred("b"))
    await harness.send(early_b, good_b)
    row = await harness.example("b")
    assert row is not None and row["label"] == 0.7
    assert sorted(r.payload for r in harness.sink.rows) == sorted(
        [early.to_bytes(), early_b.to_bytes()]
    )
    # Redelivered, both batches change nothing and reject nothing twice.
    await harness.send(early, good, pa)
    await harness.send(early_b, good_b)
    assert len(harness.sink.rows) == 2
    assert await harness.scalar("SELECT count(*) FROM dead_letters") == 2
    rejected = "SELECT count(*) FROM outcomes WHERE rejected_reason IS NOT NULL"
    assert await harness.scalar(rejected + " AND attributed_to IS NULL") == 2


async def test_bad_messages_are_dead_lettered_and_the_rest_goes_on(harness: Harness) -> None:
    t = harness.settings.topics
    result = await harness.service.handle(
        [
            harness.raw(pred("a")),
            harness.raw(b"{not json", t.predictions),
            harness.raw(outcome("a")),
        ]
    )
    assert result.consumed == 3 and result.valid == 2 and len(result.dead) == 1
    assert await harness.example("a") is not None
    row = await harness.scalar("SELECT payload FROM dead_letters")
    assert row == b"{not json"


async def test_rows_postgres_refuses_are_isolated(harness: Harness) -> None:
    """A NUL character passes JSON validation but not PostgreSQL's text type."""
    bad = pred("bad\x00id")
    result = await harness.send(pred("ok1"), bad, pred("ok2"), outcome("ok1"), outcome("ok2"))
    assert [r.error_type for r in result.dead] == ["unstorable"]
    assert result.dead[0].payload == bad.to_bytes()
    assert await harness.example("ok1") is not None and await harness.example("ok2") is not None


class FailingOnceSink(CollectingSink):
    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def publish(self, rows: Sequence[DeadLetterRow]) -> list[BaseException | None]:
        if not self.failed:
            self.failed = True
            raise ConnectionError("broker unreachable")
        return await super().publish(rows)


async def test_a_dead_letter_whose_publishing_failed_is_published_later(
    make_settings: SettingsFactory, pool: asyncpg.Pool
) -> None:
    h = Harness(make_settings(), pool)
    h.sink = FailingOnceSink()
    h.service.sink = h.sink
    p, early = pred("a"), outcome("a", at=T0 - timedelta(hours=1))
    # The broker is unreachable: the batch still completes (the dead letter is safe in
    # PostgreSQL, so the offset may move on) and the outbox publishes it later.
    result = await h.send(p, early)
    assert [r.error_type for r in result.dead] == ["impossible_time"]
    assert h.sink.rows == []
    assert await h.scalar("SELECT count(*) FROM dead_letters WHERE published_at IS NULL") == 1
    assert await h.service.republish(grace=timedelta(0)) == 1
    assert [r.payload for r in h.sink.rows] == [early.to_bytes()]
    assert await h.scalar("SELECT count(*) FROM dead_letters WHERE published_at IS NULL") == 0
    assert await h.service.republish(grace=timedelta(0)) == 0


async def test_an_unsendable_dead_letter_is_marked_and_does_not_block_the_others(
    make_settings: SettingsFactory, pool: asyncpg.Pool
) -> None:
    h = Harness(make_settings(), pool)
    huge = outcome("big", at=T0 - timedelta(hours=1))
    small = outcome("small", at=T0 - timedelta(hours=1))
    first = await h.send(pred("big"), huge)
    h.sink.refuse.add(first.dead[0].dedupe_key)  # the broker refuses this one from now on
    async with pool.acquire() as c:
        await c.execute("UPDATE dead_letters SET published_at = NULL")
    await h.send(pred("small"), small)
    async with pool.acquire() as c:
        await c.execute("UPDATE dead_letters SET published_at = NULL")
    h.sink.rows.clear()
    # In id order the refused row comes first; the one after it still goes out.
    assert await h.service.republish(grace=timedelta(0)) == 1
    assert [r.payload for r in h.sink.rows] == [small.to_bytes()]
    assert (
        await h.scalar("SELECT publish_attempts FROM dead_letters WHERE published_at IS NULL") == 1
    )
    error = await h.scalar("SELECT publish_error FROM dead_letters WHERE published_at IS NULL")
    assert "MessageSizeTooLarge" in error
    for _ in range(6):
        await h.service.republish(grace=timedelta(0))
    # Given up after a few tries: it stays in PostgreSQL and is no longer offered.
    assert (
        await h.scalar("SELECT publish_attempts FROM dead_letters WHERE published_at IS NULL") == 5
    )


async def test_pending_counts_that_strayed_are_corrected_by_the_recount(harness: Harness) -> None:
    """Rows moved by a worker that does not keep the counts (an older version still running
    during an upgrade) leave them wrong until the leader's recount puts them right."""
    await harness.send(pred("a"), pred("b"), pred("c", model="purchase"))
    assert await harness.service.recount_pending() == {}
    async with harness.pool.acquire() as c:  # what an older worker would do
        await c.execute("DELETE FROM pending_predictions WHERE prediction_id = 'a'")
        await c.execute(
            "INSERT INTO pending_predictions (prediction_id, model, predicted_at, horizon_ends_at)"
            " SELECT 'x' || i, 'purchase', now(), now() + interval '1 day'"
            " FROM generate_series(1, 3) i"
        )
    assert await pending_counts_wrong(harness.pool) == [("ctr", 2, 1), ("purchase", 1, 4)]
    assert await harness.service.recount_pending() == {"ctr": -1, "purchase": 3}
    assert await pending_counts_wrong(harness.pool) == []
    assert await harness.service.recount_pending() == {}
