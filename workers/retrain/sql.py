"""All SQL of the retraining domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from workers.db.pool import Conn

# One set-based query for the whole training set. Time-sliced: features are the ones
# stored with the prediction, labels only from events at or after it; rows whose label
# came earlier are counted, not used.
DATASET = """
SELECT prediction_id, model_version, features, label, label_source, prediction,
       predicted_at, labeled_at, matured_seq
FROM (
    SELECT * FROM labeled_examples
    WHERE model = $1 AND predicted_at >= $2
      AND (labeled_at IS NULL OR labeled_at >= predicted_at)
    ORDER BY predicted_at DESC
    LIMIT $3
) newest
ORDER BY predicted_at, prediction_id
"""

EARLY_LABELS = """
SELECT count(*) FROM labeled_examples
WHERE model = $1 AND predicted_at >= $2 AND labeled_at < predicted_at
"""

# Windows are in example time: the newest matured example anchors them, not the clock.
NEWEST_PREDICTED = "SELECT max(predicted_at) FROM labeled_examples WHERE model = $1"

# Counted up to what the controller waits for, so the check costs the same on any table.
POST_CHANGE_ROWS = """
SELECT count(*) FROM (
    SELECT 1 FROM labeled_examples WHERE model = $1 AND predicted_at >= $2 LIMIT $3
) enough
"""

# The version's latest matured examples, for placing the change point.
RECENT_EXAMPLES = """
SELECT predicted_at, prediction, label
FROM labeled_examples
WHERE model = $1 AND model_version = $2
ORDER BY matured_seq DESC
LIMIT $3
"""

MARK_REARMED = "UPDATE model_controls SET rearmed_at = $2 WHERE model = $1"

SAVE_LOOP = """
UPDATE model_controls
SET loop_state = $2, loop_version = $3, loop_trigger = $4, loop_detail = $5, change_at = $6,
    attempts = $7, last_attempt_rows = $8, next_attempt_at = $9, loop_reason = $10,
    refresh_rows = $11,
    loop_since = CASE WHEN loop_state = $2 THEN loop_since ELSE now() END
WHERE model = $1
RETURNING loop_since
"""

START_RUN = """
INSERT INTO retrain_runs (model, trigger, trigger_detail, status)
VALUES ($1, $2, $3, 'running')
ON CONFLICT (model) WHERE status = 'running' DO NOTHING
RETURNING id
"""

FINISH_RUN = """
UPDATE retrain_runs
SET status = $2, candidate_version = $3, dataset = $4, gate_report = $5, durations = $6,
    error = $7, finished_at = now()
WHERE id = $1
"""

# A run holds this session lock on its model while it lives; PostgreSQL drops it when
# the worker's connection goes, so a free lock beside a 'running' row means a dead run.
TRY_RUN_LOCK = "SELECT pg_try_advisory_lock(7301003, hashtext($1))"
RUN_UNLOCK = "SELECT pg_advisory_unlock(7301003, hashtext($1))"

RUNNING_COUNT = "SELECT count(*) FROM retrain_runs WHERE model = $1 AND status = 'running'"

RUNNING_MODELS = "SELECT DISTINCT model FROM retrain_runs WHERE status = 'running'"

ABANDON_RUNS = """
UPDATE retrain_runs SET status = 'failed', error = 'abandoned: the worker running it stopped',
       finished_at = now()
WHERE status = 'running' AND model = $1
RETURNING id
"""

CONTROL = "SELECT * FROM model_controls WHERE model = $1"

ENSURE_CONTROL = """
INSERT INTO model_controls (model) VALUES ($1) ON CONFLICT (model) DO NOTHING
"""

SET_PAUSED = """
INSERT INTO model_controls (model, paused, paused_by, paused_reason, updated_at)
VALUES ($1, $2, $3, $4, now())
ON CONFLICT (model) DO UPDATE SET paused = EXCLUDED.paused, paused_by = EXCLUDED.paused_by,
    paused_reason = EXCLUDED.paused_reason, updated_at = now()
"""

MARK_AUTO_RETRAIN = """
UPDATE model_controls SET last_auto_retrain_at = coalesce($2, last_auto_retrain_at),
       outcomes_seen_at_retrain = $3,
       updated_at = now()
WHERE model = $1
"""

# A model's outcome-labeled examples that matured after `$2`, counted up to `$3` (the
# trigger's threshold): read forward from `$2` in the seq index, so the cost grows with
# what matured since the last retrain, up to the threshold, never with the table. (On a
# never-analyzed table the planner reads the model's rows instead, as the query before
# did; autovacuum analyzes a growing table long before that costs much.)
NEW_OUTCOMES = """
SELECT count(*) FROM (
    SELECT 1 FROM labeled_examples
    WHERE matured_seq > $2 AND model = $1 AND label_source = 'outcome'
    ORDER BY matured_seq
    LIMIT $3
) s
"""

SERVING_VERSION = """
SELECT model_version FROM predictions WHERE model = $1 ORDER BY predicted_at DESC LIMIT 1
"""

# Post-change examples one version served, counted up to what a recall needs.
SERVED_SINCE = """
SELECT count(*) FROM (
    SELECT 1 FROM labeled_examples
    WHERE model = $1 AND model_version = $2 AND predicted_at >= $3 LIMIT $4
) enough
"""

# The model's earlier champions with an artifact, the most recently serving first.
FORMER_CHAMPIONS = """
SELECT v.version, v.artifact_dir, v.files
FROM model_versions v
JOIN (
    SELECT version, max(id) AS last FROM alias_history
    WHERE model = $1 AND alias = 'champion' GROUP BY version
) served USING (version)
WHERE v.model = $1 AND v.status = 'retired' AND v.artifact_dir IS NOT NULL
ORDER BY served.last DESC
LIMIT $2
"""

RUNS = "SELECT * FROM retrain_runs WHERE model = $1 ORDER BY id DESC LIMIT $2"


async def dataset(conn: Conn, model: str, since: datetime, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(DATASET, model, since, limit)


async def early_labels(conn: Conn, model: str, since: datetime) -> int:
    return int(await conn.fetchval(EARLY_LABELS, model, since))


async def newest_predicted(conn: Conn, model: str) -> datetime | None:
    value: datetime | None = await conn.fetchval(NEWEST_PREDICTED, model)
    return value


async def post_change_rows(conn: Conn, model: str, since: datetime, cap: int) -> int:
    return int(await conn.fetchval(POST_CHANGE_ROWS, model, since, cap))


async def recent_examples(
    conn: Conn, model: str, version: str, limit: int
) -> list[tuple[datetime, float, float]]:
    """(predicted_at, prediction, label), oldest prediction first."""
    rows = await conn.fetch(RECENT_EXAMPLES, model, version, limit)
    return sorted((r["predicted_at"], r["prediction"], r["label"]) for r in rows)


async def mark_rearmed(conn: Conn, model: str, at: datetime) -> None:
    await conn.execute(ENSURE_CONTROL, model)
    await conn.execute(MARK_REARMED, model, at)


async def save_loop(conn: Conn, model: str, loop: Any) -> None:
    await conn.execute(ENSURE_CONTROL, model)
    await conn.execute(
        SAVE_LOOP,
        model,
        loop.state,
        loop.version,
        loop.trigger,
        loop.detail or {},
        loop.change_at,
        loop.attempts,
        loop.last_attempt_rows,
        loop.next_attempt_at,
        loop.reason,
        loop.refresh_rows,
    )


async def start_run(conn: Conn, model: str, trigger: str, detail: dict[str, Any]) -> int | None:
    value: int | None = await conn.fetchval(START_RUN, model, trigger, detail)
    return value


async def finish_run(conn: Conn, run_id: int, **v: Any) -> None:
    await conn.execute(
        FINISH_RUN,
        run_id,
        v["status"],
        v.get("candidate_version"),
        v.get("dataset", {}),
        v.get("gate_report", []),
        v.get("durations", {}),
        v.get("error"),
    )


async def try_run_lock(conn: Conn, model: str) -> bool:
    return bool(await conn.fetchval(TRY_RUN_LOCK, model))


async def run_unlock(conn: Conn, model: str) -> None:
    await conn.execute(RUN_UNLOCK, model)


async def is_running(conn: Conn, model: str) -> bool:
    return bool(await conn.fetchval(RUNNING_COUNT, model))


async def abandon_dead_runs(conn: Conn) -> list[int]:
    """Fail 'running' runs whose worker is gone (their lock is free)."""
    dead: list[int] = []
    for row in await conn.fetch(RUNNING_MODELS):
        if await try_run_lock(conn, row["model"]):
            try:
                dead += [r["id"] for r in await conn.fetch(ABANDON_RUNS, row["model"])]
            finally:
                await run_unlock(conn, row["model"])
    return dead


async def control(conn: Conn, model: str) -> asyncpg.Record:
    await conn.execute(ENSURE_CONTROL, model)
    row: asyncpg.Record | None = await conn.fetchrow(CONTROL, model)
    assert row is not None
    return row


async def set_paused(conn: Conn, model: str, paused: bool, by: str, reason: str) -> None:
    await conn.execute(SET_PAUSED, model, paused, by, reason)


async def mark_auto_retrain(conn: Conn, model: str, at: datetime | None, seq: int) -> None:
    """``at`` None keeps the last automatic retrain's time (the cooldown's start)."""
    await conn.execute(MARK_AUTO_RETRAIN, model, at, seq)


async def new_outcomes(conn: Conn, model: str, since_seq: int, up_to: int) -> int:
    """How many of ``model``'s examples matured with an outcome after ``since_seq``,
    counting no further than ``up_to``."""
    return int(await conn.fetchval(NEW_OUTCOMES, model, since_seq, up_to))


async def serving_version(conn: Conn, model: str) -> str | None:
    value: str | None = await conn.fetchval(SERVING_VERSION, model)
    return value


async def runs(conn: Conn, model: str, limit: int = 20) -> list[asyncpg.Record]:
    return await conn.fetch(RUNS, model, limit)


LAST_SUCCESSFUL_RUNS = """
SELECT model, max(finished_at) AS at FROM retrain_runs
WHERE status = 'succeeded' GROUP BY model
"""


async def last_successful_runs(conn: Conn) -> dict[str, datetime]:
    return {r["model"]: r["at"] for r in await conn.fetch(LAST_SUCCESSFUL_RUNS)}


async def former_champions(conn: Conn, model: str, limit: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(FORMER_CHAMPIONS, model, limit))


async def served_since(conn: Conn, model: str, version: str, since: datetime, cap: int) -> int:
    return int(await conn.fetchval(SERVED_SINCE, model, version, since, cap))
