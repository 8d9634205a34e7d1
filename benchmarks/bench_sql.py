"""What `make bench` (benchmarks/bench.py) asks PostgreSQL: progress, read-back, pre-fill.

Each run of the benchmark has a database of its own, so no query needs scoping to a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from workers.db.pool import Conn

# -- progress while a backlog drains: index lookups only, so polling costs PostgreSQL
# (whose CPU the benchmark measures) next to nothing.

# matured_seq comes from a sequence, so the largest one can run ahead of the row count
# (an upsert draws a number even when it updates): a trigger for the exact count below.
LABELED_PROGRESS = "SELECT coalesce(max(matured_seq), 0) FROM labeled_examples"

DRAINED = """
SELECT (SELECT count(*) FROM predictions) AS predictions,
       (SELECT count(*) FROM pending_predictions) AS pending,
       (SELECT count(*) FROM outcomes) AS outcomes,
       (SELECT count(*) FROM labeled_examples) AS labeled
"""

# The first write of the drain (a batch transaction's start) and the last maturation (the
# worker's clock just before its statement): the span the drain rate is taken over.
WORKER_SPAN = """
SELECT least((SELECT min(ingested_at) FROM predictions),
             (SELECT min(ingested_at) FROM outcomes)) AS first,
       (SELECT max(matured_at) FROM labeled_examples) AS last
"""

# Keys make these 0 by construction; counted anyway, since a doubled row is what a drain
# benchmark must not hide. Rows for anything not sent count as doubled too.
WORKER_READ_BACK = """
SELECT (SELECT count(*) FROM predictions WHERE prediction_id LIKE $1 || '-%') AS predictions,
       (SELECT count(*) FROM outcomes WHERE prediction_id LIKE $1 || '-%') AS outcomes,
       (SELECT count(*) FROM labeled_examples
         WHERE prediction_id LIKE $1 || '-%' AND label_source = 'outcome') AS labeled,
       (SELECT count(*) FROM predictions WHERE prediction_id NOT LIKE $1 || '-%')
     + (SELECT count(*) FROM outcomes WHERE coalesce(prediction_id, '') NOT LIKE $1 || '-%')
     + (SELECT count(*) FROM labeled_examples WHERE prediction_id NOT LIKE $1 || '-%') AS foreign,
       (SELECT count(*) - count(DISTINCT event_id) FROM predictions)
     + (SELECT count(*) - count(DISTINCT event_id) FROM outcomes)
     + (SELECT count(*) - count(DISTINCT prediction_id) FROM labeled_examples) AS repeated,
       (SELECT count(*) FROM dead_letters) AS dead_letters
"""

# The naive agent's table: one row per event it stored, no key, so a redelivered event
# shows up as a second row instead of being hidden by a constraint.
NAIVE_TABLE = """
CREATE TABLE IF NOT EXISTS naive_events (
    id            bigserial PRIMARY KEY,
    event_id      uuid NOT NULL,
    topic         text NOT NULL,
    prediction_id text,
    body          jsonb NOT NULL,
    ingested_at   timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""

NAIVE_INSERT = """
INSERT INTO naive_events (event_id, topic, prediction_id, body) VALUES ($1, $2, $3, $4::jsonb)
"""

NAIVE_PROGRESS = "SELECT coalesce(max(id), 0) FROM naive_events"

NAIVE_READ_BACK = """
SELECT count(*) AS stored, count(DISTINCT event_id) AS distinct_events,
       min(ingested_at) AS first, max(ingested_at) AS last
FROM naive_events
"""

# -- outcome-to-metric latency: when each outcome's example matured, by send index.
MATURED_TIMES = """
SELECT substring(prediction_id FROM length($1) + 2)::int AS i,
       extract(epoch FROM matured_at)::float8 AS at
FROM labeled_examples WHERE prediction_id LIKE $1 || '-%'
"""

STEADY_PROGRESS = "SELECT count(*) FROM labeled_examples WHERE prediction_id LIKE $1 || '-%'"


@dataclass(frozen=True)
class Drained:
    predictions: int
    pending: int
    outcomes: int
    labeled: int


@dataclass(frozen=True)
class WorkerReadBack:
    predictions: int
    outcomes: int
    labeled: int
    foreign: int
    repeated: int
    dead_letters: int
    first: datetime | None
    last: datetime | None


@dataclass(frozen=True)
class NaiveReadBack:
    stored: int
    distinct_events: int
    first: datetime | None
    last: datetime | None


async def labeled_progress(conn: Conn) -> int:
    return int(await conn.fetchval(LABELED_PROGRESS))


async def drained(conn: Conn) -> Drained:
    row = await conn.fetchrow(DRAINED)
    assert row is not None
    return Drained(**{k: int(v) for k, v in dict(row).items()})


async def worker_read_back(conn: Conn, run_id: str) -> WorkerReadBack:
    counts = await conn.fetchrow(WORKER_READ_BACK, run_id)
    span = await conn.fetchrow(WORKER_SPAN)
    assert counts is not None and span is not None
    return WorkerReadBack(
        **{k: int(v) for k, v in dict(counts).items()}, first=span["first"], last=span["last"]
    )


async def naive_progress(conn: Conn) -> int:
    return int(await conn.fetchval(NAIVE_PROGRESS))


async def naive_read_back(conn: Conn) -> NaiveReadBack:
    row = await conn.fetchrow(NAIVE_READ_BACK)
    assert row is not None
    return NaiveReadBack(int(row["stored"]), int(row["distinct_events"]), row["first"], row["last"])


async def matured_times(conn: Conn, run_id: str) -> list[tuple[int, float]]:
    return [(int(r["i"]), float(r["at"])) for r in await conn.fetch(MATURED_TIMES, run_id)]


async def steady_progress(conn: Conn, run_id: str) -> int:
    return int(await conn.fetchval(STEADY_PROGRESS, run_id))


# -- pre-fill: matured history for the batch-time comparison, made by generate_series in
# PostgreSQL (no client round trip per row). Rows take their features from FILL_VARIANTS
# prepared vectors (by row number), so a prediction and its labeled example carry the same
# ones and no row pays for building JSON.

FILL_VARIANTS = 4096


def fill_features_statement(names: tuple[str, ...]) -> str:
    """A temporary table of FILL_VARIANTS feature objects, k -> features, for this
    connection. ``names`` are the benchmark's own constant feature names."""
    if not all(name.isidentifier() for name in names):
        raise ValueError(f"feature names must be identifiers: {names}")
    pairs = ", ".join(
        f"'{name}', round(sin(k * {n + 1}.0)::numeric, 6)" for n, name in enumerate(names)
    )
    return f"""
CREATE TEMP TABLE IF NOT EXISTS fill_features AS
SELECT k, jsonb_build_object({pairs}) AS features
FROM generate_series(0, {FILL_VARIANTS - 1}) AS k
"""


def _time_ordered(at: str, seed: str) -> str:
    """SQL for an event id ordered by time like the UUIDv7 ids producers send: the time's
    milliseconds, then bits of a hash of ``seed``."""
    return (
        f"(lpad(to_hex((extract(epoch FROM {at}) * 1000)::bigint), 12, '0')"
        f" || substr(md5({seed}), 1, 20))::uuid"
    )


# Rows $1..$2 of model $3, prediction i made at $4 + i ms, its outcome observed 1 s later.
_FILL_ROWS = f"""
FROM (SELECT i, 'fill-' || i AS pid, $4::timestamptz + i * interval '1 ms' AS t,
             cos(i) AS prediction, cos(i) + 0.1 * sin(7 * i) AS label, $3::text AS model
      FROM generate_series($1::bigint, $2::bigint) AS i) AS g
JOIN fill_features ON k = i % {FILL_VARIANTS}
"""

_OUTCOME_ID = _time_ordered("t + interval '1 s'", "'o' || i")

FILL_PREDICTIONS = f"""
INSERT INTO predictions (prediction_id, event_id, model, model_version, features, prediction,
                         predicted_at, horizon_ends_at, ingested_at)
SELECT pid, {_time_ordered("t", "'p' || i")}, model, 'v0', features, prediction,
       t, t + interval '1 hour', t + interval '1 s'
{_FILL_ROWS}"""

FILL_OUTCOMES = f"""
INSERT INTO outcomes (event_id, prediction_id, model, outcome_kind, value, observed_at,
                      attributed_to, ingested_at)
SELECT {_OUTCOME_ID}, pid, NULL, 'measured', label, t + interval '1 s', pid,
       t + interval '1 s'
{_FILL_ROWS}"""

FILL_LABELED = f"""
INSERT INTO labeled_examples (prediction_id, model, model_version, features, prediction,
                              label, label_source, label_event_id, predicted_at, labeled_at,
                              matured_at, updated_at)
SELECT pid, model, 'v0', features, prediction, label, 'outcome',
       {_OUTCOME_ID},
       t, t + interval '1 s', t + interval '1 s', t + interval '1 s'
{_FILL_ROWS}"""

FILL_STATEMENTS = (FILL_PREDICTIONS, FILL_OUTCOMES, FILL_LABELED)


TABLE_ROWS = """
SELECT (SELECT count(*) FROM predictions) AS predictions,
       (SELECT count(*) FROM outcomes) AS outcomes,
       (SELECT count(*) FROM labeled_examples) AS labeled
"""

DATABASE_SIZE = "SELECT pg_database_size(current_database())"


async def table_rows(conn: Conn) -> dict[str, int]:
    row = await conn.fetchrow(TABLE_ROWS)
    assert row is not None
    return {k: int(v) for k, v in dict(row).items()}


async def database_bytes(conn: Conn) -> int:
    return int(await conn.fetchval(DATABASE_SIZE))


# -- what monitoring did while the worker drained (role all)
MONITOR_OUTPUT = """
SELECT (SELECT count(*) FROM quality_snapshots) AS snapshots,
       (SELECT count(*) FROM quality_snapshots WHERE reason = 'alert') AS alerts,
       (SELECT count(*) FROM drift_stats) AS drift_checks,
       (SELECT count(*) FROM drift_stats WHERE episode_start) AS episodes,
       (SELECT count(*) FROM retrain_runs) AS retrains,
       (SELECT coalesce(max(learned), 0) FROM challenger_checkpoints) AS learned
"""


@dataclass(frozen=True)
class MonitorOutput:
    snapshots: int
    alerts: int
    drift_checks: int
    episodes: int
    retrains: int
    learned: int  # by the busiest challenger, at its last checkpoint

    def describe(self, skipped: int) -> str:
        """What the monitor had written when the benchmark stopped the worker. Snapshots,
        checkpoints and the skipped-examples gauge are written when a quality tick ends,
        and a tick feeds everything matured since the last one."""
        said = (
            f"monitoring wrote {self.drift_checks:,} drift checks ({self.episodes} episodes), "
            f"{self.retrains} retrain runs, {self.snapshots:,} quality snapshots "
            f"({self.alerts} on alert)"
        )
        if self.snapshots == 0:
            return said + (
                ": its first quality tick was still feeding the backlog's examples to the "
                "windows and challengers when the worker was stopped"
            )
        return said + (
            f"; the challengers had learned from {self.learned:,} examples at their last "
            f"checkpoint and skipped {skipped:,} (over their rate budget)"
        )


async def monitor_output(conn: Conn) -> MonitorOutput:
    row = await conn.fetchrow(MONITOR_OUTPUT)
    assert row is not None
    return MonitorOutput(**{k: int(v) for k, v in dict(row).items()})
