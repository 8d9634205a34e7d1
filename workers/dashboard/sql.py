"""All SQL of the dashboard: read-only queries over the monitor's and registry's tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from workers.db.pool import Conn
from workers.monitor import sql as monitor_sql

# Which (window, metric) series a model has, newest first, so the page can offer them.
QUALITY_CHOICES = """
SELECT window_name, metric, max(taken_at) AS last_at
FROM quality_snapshots
WHERE model = $1 AND segment = '' AND taken_at >= $2
GROUP BY window_name, metric
ORDER BY window_name, metric
"""

# One metric over one window for every version of a model (the champion's versions and
# any candidate served on a canary), oldest first; capped so a long span stays light.
QUALITY_SERIES = """
SELECT model_version, taken_at, value, n, reason
FROM (
    SELECT model_version, taken_at, value, n, reason
    FROM quality_snapshots
    WHERE model = $1 AND segment = '' AND window_name = $2 AND metric = $3
      AND taken_at >= $4
      AND model_version NOT LIKE 'challenger:%' AND model_version NOT LIKE 'champion-vs:%'
    ORDER BY taken_at DESC
    LIMIT $5
) newest
ORDER BY taken_at
"""

# Shadow challengers and the champion scored on the very same examples.
SHADOW_SERIES = """
SELECT model_version, window_name, metric, taken_at, value, n
FROM (
    SELECT model_version, window_name, metric, taken_at, value, n
    FROM quality_snapshots
    WHERE model = $1 AND segment = '' AND window_name LIKE 'shadow\\_%' AND taken_at >= $2
    ORDER BY taken_at DESC
    LIMIT $3
) newest
ORDER BY taken_at
"""

# Versions that have drift checks in the span, the newest checked first.
DRIFT_VERSIONS = """
SELECT model_version, max(computed_at) AS last_at
FROM drift_stats
WHERE model = $1 AND computed_at >= $2
GROUP BY model_version
ORDER BY last_at DESC
"""

DRIFT_SERIES = """
SELECT feature, method, statistic, p_value, threshold, drifted, episode_start, n_reference,
       n_current, computed_at
FROM (
    SELECT * FROM drift_stats
    WHERE model = $1 AND model_version = $2 AND computed_at >= $3
    ORDER BY computed_at DESC
    LIMIT $4
) newest
ORDER BY feature, computed_at
"""

# Label lag and join completeness per model over a recent span (what `LagMeasured`
# reports for all models together).
LABEL_DELAYS = """
SELECT model,
       percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (
           ORDER BY extract(epoch FROM labeled_at - predicted_at)) AS q,
       count(*) AS n
FROM labeled_examples
WHERE model = ANY($2::text[]) AND matured_at >= $1 AND label_source IN ('outcome', 'feedback')
GROUP BY model
"""

COMPLETENESS = monitor_sql.COMPLETENESS_BY_MODEL

PENDING = monitor_sql.PENDING_BY_MODEL

CONTROLS = """
SELECT model, loop_state, loop_version, loop_trigger, change_at, attempts, next_attempt_at,
       loop_reason, loop_since, paused, paused_by, paused_reason, last_auto_retrain_at
FROM model_controls ORDER BY model
"""

# Candidates waiting for approval, with their whole model card.
CANDIDATE_CARDS = """
SELECT model, version, kind, created_at, run_id, parent_version, card
FROM model_versions WHERE status = 'candidate'
ORDER BY created_at
"""

VERSIONS = """
SELECT version, status, kind, parent_version, run_id, created_at, decided_at, decided_by,
       card -> 'metrics' AS metrics
FROM model_versions WHERE model = $1
ORDER BY created_at DESC LIMIT $2
"""

RUNS = """
SELECT id, trigger, status, candidate_version, dataset -> 'rows' AS rows, gate_report,
       durations, error, started_at, finished_at
FROM retrain_runs WHERE model = $1
ORDER BY started_at DESC LIMIT $2
"""

PROMOTIONS = """
SELECT id, version, previous_version, set_by, reason, command_id, rollback, set_at
FROM alias_history WHERE model = $1 AND alias = 'champion'
ORDER BY id DESC LIMIT $2
"""


async def quality_choices(conn: Conn, model: str, since: datetime) -> list[asyncpg.Record]:
    return await conn.fetch(QUALITY_CHOICES, model, since)


async def quality_series(
    conn: Conn, model: str, window: str, metric: str, since: datetime, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(QUALITY_SERIES, model, window, metric, since, limit)


async def shadow_series(
    conn: Conn, model: str, since: datetime, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(SHADOW_SERIES, model, since, limit)


async def drift_versions(conn: Conn, model: str, since: datetime) -> list[asyncpg.Record]:
    return await conn.fetch(DRIFT_VERSIONS, model, since)


async def drift_series(
    conn: Conn, model: str, version: str, since: datetime, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(DRIFT_SERIES, model, version, since, limit)


async def label_delays(conn: Conn, since: datetime, models: Sequence[str]) -> list[asyncpg.Record]:
    return await conn.fetch(LABEL_DELAYS, since, list(models))


async def completeness(conn: Conn, since: datetime, models: Sequence[str]) -> list[asyncpg.Record]:
    return await conn.fetch(COMPLETENESS, since, list(models))


async def pending(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(PENDING)


async def controls(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(CONTROLS)


async def candidate_cards(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(CANDIDATE_CARDS)


async def versions(conn: Conn, model: str, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(VERSIONS, model, limit)


async def runs(conn: Conn, model: str, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(RUNS, model, limit)


async def promotions(conn: Conn, model: str, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(PROMOTIONS, model, limit)
