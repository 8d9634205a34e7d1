"""Every per-batch statement of the hot path reaches the big tables by index, whatever the
planner's statistics say.

A batch must cost the same at 10M stored rows as at 100k. On young tables (never
analyzed: the first minute of a deployment, or any table autovacuum has not reached yet)
the planner once chose a hash join over every stored outcome for the impossible-outcome
check, so each batch scanned the whole table; a lone ingest worker then ran at a third of
its speed. These tests EXPLAIN each statement on tables in that state and after ANALYZE.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest

from tests.conftest import TEST_MODELS
from workers.dashboard import sql as dashboard_sql
from workers.ingest import sql
from workers.monitor import sql as monitor_sql
from workers.retrain import sql as retrain_sql

pytestmark = pytest.mark.integration

STORED = 150_000
# A small batch, and one the size the worker drains a backlog with: with 2,000 ids the
# planner once judged a whole-table scan cheaper than 2,000 lookups for maturation's update.
BATCHES = (200, 2_000)
BIG_TABLES = (
    "predictions",
    "outcomes",
    "labeled_examples",
    "feedback",
    "pending_predictions",
    "dropped_predictions",
)
SEQ_SCAN = re.compile(r"Seq Scan on (\w+)")

FILL = """
INSERT INTO predictions (prediction_id, event_id, model, model_version, entity_id, features,
                         prediction, predicted_at, horizon_ends_at)
SELECT 'p' || i, gen_random_uuid(), 'ctr', 'v1', CASE WHEN i % 2 = 0 THEN 'e' || i END,
       '{"x": 1}', 0.5, $1::timestamptz - make_interval(secs => i),
       $1::timestamptz + interval '1 day'
FROM generate_series(1, $2::int) i;
INSERT INTO outcomes (event_id, prediction_id, model, outcome_kind, value, observed_at,
                      attributed_to)
SELECT gen_random_uuid(), 'p' || i, 'ctr', 'click', 1, $1::timestamptz, 'p' || i
FROM generate_series(1, $2::int) i;
INSERT INTO labeled_examples (prediction_id, model, model_version, features, prediction, label,
                              label_source, predicted_at, matured_at)
SELECT 'p' || i, 'ctr', 'v1', '{"x": 1}', 0.5, 1, 'outcome', $1::timestamptz, $1::timestamptz
FROM generate_series(1, $2::int) i;
INSERT INTO feedback (event_id, prediction_id, label, source, given_at)
SELECT gen_random_uuid(), 'p' || i, 1, 'review', $1::timestamptz
FROM generate_series(1, $2::int, 3) i;
INSERT INTO pending_predictions (prediction_id, model, predicted_at, horizon_ends_at)
SELECT 'q' || i, 'ctr', $1::timestamptz, $1::timestamptz + interval '1 day'
FROM generate_series(1, $2::int) i;
INSERT INTO dropped_predictions (prediction_id, model, predicted_at, dropped_at)
SELECT 'd' || i, 'ctr', $1::timestamptz - interval '2 days', $1::timestamptz
FROM generate_series(1, $2::int) i;
"""


async def _fill(conn: asyncpg.Connection, now: datetime) -> None:
    for statement in FILL.strip().split(";\n"):
        await conn.execute(statement, now, STORED)


def _scanned(plan: list[asyncpg.Record]) -> set[str]:
    text = "\n".join(r[0] for r in plan)
    return {t for t in SEQ_SCAN.findall(text) if t in BIG_TABLES}


async def _plans(conn: asyncpg.Connection, now: datetime, batch: int) -> dict[str, set[str]]:
    """The big tables each statement would scan whole, for one batch of ids: half new,
    half already stored."""
    stored = [f"p{i}" for i in range(1, STORED, STORED // (batch // 2))][: batch // 2]
    prediction_ids = stored + [f"new{i}" for i in range(batch // 2)]
    outcome_ids: list[UUID] = [
        r["event_id"]
        for r in await conn.fetch("SELECT event_id FROM outcomes LIMIT $1", batch // 2)
    ] + [uuid4() for _ in range(batch // 2)]
    windows = [(f"e{2 * i}", now - timedelta(hours=1), now) for i in range(1, batch // 2)]
    names = sorted(TEST_MODELS)
    m = TEST_MODELS
    statements = {
        "attribute_entity_outcomes": (
            sql.ATTRIBUTE_ENTITY_OUTCOMES,
            [
                outcome_ids,
                [w[0] for w in windows],
                [w[1] for w in windows],
                [w[2] for w in windows],
            ],
        ),
        "mature": (
            sql.MATURE,
            [
                names,
                [m[n].feedback_wins for n in names],
                [m[n].no_outcome == "negative" for n in names],
                [m[n].no_outcome_label for n in names],
                prediction_ids,
                now,
                ["ctr"],
                [batch // 2],
                timedelta(seconds=60),
            ],
        ),
        "existing_prediction_events": (sql.EXISTING_PREDICTION_EVENTS, [prediction_ids]),
        "expired_pending": (sql.EXPIRED_PENDING, [names, now, batch]),
    }
    found = {}
    for name, (statement, args) in statements.items():
        # A custom plan for these very values, as PostgreSQL makes for the first runs of
        # a prepared statement.
        await conn.execute("SET plan_cache_mode = force_custom_plan")
        found[f"{name} x{batch}"] = _scanned(await conn.fetch("EXPLAIN " + statement, *args))
        # And the generic plan it may switch to after five.
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        generic = _scanned(await conn.fetch("EXPLAIN " + statement, *args))
        found[f"{name} x{batch} (generic)"] = generic
    await conn.execute("RESET plan_cache_mode")
    return found


async def test_hot_statements_use_indexes_on_young_and_analyzed_tables(pool: asyncpg.Pool) -> None:
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        await _fill(conn, now)
        young = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'outcomes' "
            "AND last_analyze IS NULL AND last_autoanalyze IS NULL"
        )
        before = {k: v for b in BATCHES for k, v in (await _plans(conn, now, b)).items()}
        await conn.execute(f"ANALYZE {', '.join(BIG_TABLES)}")
        after = {k: v for b in BATCHES for k, v in (await _plans(conn, now, b)).items()}
    assert young == 1, "the first check must run on never-analyzed tables"
    assert {k: v for k, v in before.items() if v} == {}, "scans on young tables"
    assert {k: v for k, v in after.items() if v} == {}, "scans after ANALYZE"


WINDOW_INDEXES = {
    "label_delays": ("labeled_examples_model_matured_at",),
    # one count per state, each from its own table
    "completeness": (
        "predictions_model_time",
        "labeled_examples_model_predicted",
        "dropped_predictions_model",
    ),
}
MODEL_BOUND = re.compile(r"model = (ANY|m\.model)")


async def _window_plans(conn: asyncpg.Connection, now: datetime) -> dict[str, str]:
    """The plan text of each periodic window query (the lag report's and the dashboard's)."""
    since = now - timedelta(minutes=1)
    models = sorted(TEST_MODELS)
    statements = {
        "monitor label_delays": (monitor_sql.LABEL_DELAYS, [since, models]),
        "monitor completeness": (monitor_sql.COMPLETENESS, [since, models]),
        "dashboard label_delays": (dashboard_sql.LABEL_DELAYS, [since, models]),
        "dashboard completeness": (dashboard_sql.COMPLETENESS, [since, models]),
    }
    found = {}
    for name, (statement, args) in statements.items():
        for mode in ("force_custom_plan", "force_generic_plan"):
            await conn.execute(f"SET plan_cache_mode = {mode}")
            plan = await conn.fetch("EXPLAIN " + statement, *args)
            found[f"{name} ({mode})"] = "\n".join(r[0] for r in plan)
    await conn.execute("RESET plan_cache_mode")
    return found


async def test_window_queries_reach_their_window_by_model_and_time(pool: asyncpg.Pool) -> None:
    """Every report interval reads the last window of maturations and predictions. Each
    statement names its models, so its index condition bounds the index's leading column:
    no whole-table scan, and no reliance on PostgreSQL 18's skip scan (production may run
    16, where an index without its leading column is no help and the table is scanned)."""
    now = datetime.now(UTC) + timedelta(days=1)  # after every stored row: the window is empty
    async with pool.acquire() as conn:
        await _fill(conn, now - timedelta(days=1))
        for analyzed in (False, True):
            if analyzed:
                await conn.execute(f"ANALYZE {', '.join(BIG_TABLES)}")
            for name, plan in (await _window_plans(conn, now)).items():
                scanned = {t for t in SEQ_SCAN.findall(plan) if t in BIG_TABLES}
                assert not scanned, (name, analyzed, plan)
                for index in WINDOW_INDEXES[name.split(" (")[0].split()[1]]:
                    used = rf"(using|Bitmap Index Scan on) {index}\b"
                    assert re.search(used, plan), (name, index, plan)
                conditions = [line for line in plan.splitlines() if "Index Cond" in line]
                assert all(MODEL_BOUND.search(line) for line in conditions), (name, analyzed, plan)


async def test_the_drift_tick_finds_active_versions_without_reading_the_span(
    pool: asyncpg.Pool,
) -> None:
    """Which versions served lately is asked every drift interval (5 s) over a day of
    predictions by default: its cost must not grow with what the span holds."""
    now = datetime.now(UTC)
    since = now - timedelta(days=1)  # over half of the 150,000 stored predictions
    models = sorted(TEST_MODELS)
    async with pool.acquire() as conn:
        await _fill(conn, now)
        # a version that served only before the span, and one after the rest in the index
        await conn.execute(
            "INSERT INTO predictions (prediction_id, event_id, model, model_version, features,"
            " prediction, predicted_at, horizon_ends_at) VALUES"
            " ('old', gen_random_uuid(), 'ctr', 'v0', '{}', 0, $1, $1),"
            " ('new', gen_random_uuid(), 'ctr', 'v2', '{}', 0, $2, $2)",
            now - timedelta(days=3),
            now,
        )
        await conn.execute("ANALYZE predictions")
        rows = await conn.fetch(monitor_sql.ACTIVE_VERSIONS, models, since)
        plan = await conn.fetch(
            "EXPLAIN (ANALYZE, BUFFERS) " + monitor_sql.ACTIVE_VERSIONS, models, since
        )
    assert [(r["model"], r["model_version"]) for r in rows] == [("ctr", "v1"), ("ctr", "v2")]
    text = "\n".join(r[0] for r in plan)
    assert "Seq Scan on predictions" not in text, text
    # The top node's buffers are the whole statement's: a few index probes, not the
    # hundreds of index pages that 86,400 entries fill.
    top = re.search(r"Buffers: shared (?:hit=(\d+))? ?(?:read=(\d+))?", text)
    assert top is not None, text
    pages = sum(int(n) for n in top.groups() if n)
    assert pages < 60, text


async def test_the_outcome_count_trigger_reads_from_its_seq_not_the_whole_table(
    pool: asyncpg.Pool,
) -> None:
    """Retrain housekeeping asks every five seconds how many outcomes a model matured
    since its last retrain: counted forward from that seq and no further than the
    trigger's threshold, a few index pages however many examples are stored (once the
    table has statistics: on a never-analyzed one the planner reads the model's rows)."""
    async with pool.acquire() as conn:
        await _fill(conn, datetime.now(UTC))  # 150,000 labeled examples of ctr, by outcome
        await conn.execute(
            "UPDATE labeled_examples SET label_source = 'feedback' WHERE matured_seq % 10 = 0"
        )
        top = await conn.fetchval("SELECT max(matured_seq) FROM labeled_examples")
        assert await monitor_sql.max_seq(conn) == top
        assert await retrain_sql.new_outcomes(conn, "ctr", top - 20, 1_000) == 18
        assert await retrain_sql.new_outcomes(conn, "ctr", top - 20, 5) == 5
        assert await retrain_sql.new_outcomes(conn, "other", top - 20, 1_000) == 0
        await conn.execute("ANALYZE labeled_examples")
        plans = {}
        for mode in ("force_custom_plan", "force_generic_plan"):
            await conn.execute(f"SET plan_cache_mode = {mode}")
            for name, statement, args in (
                ("max_seq", monitor_sql.MAX_SEQ, []),
                # from the first seq: only the threshold bounds the read
                ("new_outcomes", retrain_sql.NEW_OUTCOMES, ["ctr", 0, 50]),
            ):
                plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement, *args)
                plans[(name, mode)] = "\n".join(r[0] for r in plan)
        await conn.execute("RESET plan_cache_mode")
    for key, text in plans.items():
        assert "Seq Scan on labeled_examples" not in text, (key, text)
        top_buffers = re.search(r"Buffers: shared (?:hit=(\d+))? ?(?:read=(\d+))?", text)
        assert top_buffers is not None, (key, text)
        assert sum(int(n) for n in top_buffers.groups() if n) < 30, (key, text)


async def test_the_pending_count_and_oldest_are_read_without_a_scan(pool: asyncpg.Pool) -> None:
    """The lag report asks every 10 s how many predictions wait and since when; with long
    horizons nearly every prediction ever made waits. The count is kept (pending_counts)
    and the oldest read from an index: a few pages, however many are pending."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        await _fill(conn, now)  # 150,000 pending predictions of ctr, made at `now`
        await conn.execute(
            "INSERT INTO pending_predictions (prediction_id, model, predicted_at,"
            " horizon_ends_at) VALUES ('first', 'ctr', $1, $2)",
            now - timedelta(days=30),
            now + timedelta(days=150),
        )
        # the fill bypasses maturation, which keeps this count
        await conn.execute("INSERT INTO pending_counts (model, n) VALUES ('ctr', $1)", STORED + 1)
        total, oldest = await monitor_sql.pending(conn)
        by_model = await dashboard_sql.pending(conn)
        await conn.execute("ANALYZE pending_predictions, pending_counts")
        plans = {
            name: "\n".join(
                r[0] for r in await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement)
            )
            for name, statement in (
                ("monitor", monitor_sql.PENDING),
                ("dashboard", dashboard_sql.PENDING),
            )
        }
    assert (total, oldest) == (STORED + 1, now - timedelta(days=30))
    assert [(r["model"], r["n"], r["oldest"]) for r in by_model] == [
        ("ctr", STORED + 1, now - timedelta(days=30))
    ]
    for name, text in plans.items():
        assert "Seq Scan on pending_predictions" not in text, (name, text)
        top = re.search(r"Buffers: shared (?:hit=(\d+))? ?(?:read=(\d+))?", text)
        assert top is not None, text
        assert sum(int(n) for n in top.groups() if n) < 20, (name, text)
