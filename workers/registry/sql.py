"""All SQL of the registry, commands and audit domain."""

from __future__ import annotations

from typing import Any

import asyncpg

from workers.db.pool import Conn

UPSERT_VERSION = """
INSERT INTO model_versions (model, version, status, kind, artifact_dir, files, card,
                            parent_version, run_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (model, version) DO NOTHING
RETURNING version
"""

GET_VERSION = "SELECT * FROM model_versions WHERE model = $1 AND version = $2"

# Locks the row for the rest of the transaction: an approval and an expiry of the same
# candidate cannot both win.
LOCK_VERSION = "SELECT * FROM model_versions WHERE model = $1 AND version = $2 FOR UPDATE"

SET_STATUS = """
UPDATE model_versions SET status = $3, decided_at = now(), decided_by = $4
WHERE model = $1 AND version = $2
"""

ALIAS_FOR_UPDATE = """
SELECT version FROM model_aliases WHERE model = $1 AND alias = $2 FOR UPDATE
"""

CHAMPION = """
SELECT v.* FROM model_aliases a
JOIN model_versions v ON v.model = a.model AND v.version = a.version
WHERE a.model = $1 AND a.alias = 'champion'
"""

SET_ALIAS = """
INSERT INTO model_aliases (model, alias, version) VALUES ($1, $2, $3)
ON CONFLICT (model, alias) DO UPDATE SET version = EXCLUDED.version, set_at = now()
"""

ALIAS_HISTORY_INSERT = """
INSERT INTO alias_history (model, alias, version, previous_version, set_by, reason, command_id,
                           rollback)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""

CHAMPION_HISTORY = """
SELECT version, rollback FROM alias_history
WHERE model = $1 AND alias = 'champion'
ORDER BY id
"""

ALIAS_HISTORY = """
SELECT * FROM alias_history WHERE model = $1 ORDER BY id DESC LIMIT $2
"""

STALE_CANDIDATES = """
SELECT model, version, created_at FROM model_versions
WHERE status = 'candidate' AND model = $1 AND created_at < $2
"""

VERSIONS = """
SELECT model, version, status, kind, parent_version, run_id, created_at, decided_at, decided_by,
       card -> 'metrics' AS metrics
FROM model_versions WHERE model = $1 ORDER BY created_at DESC LIMIT $2
"""

AUDIT = """
INSERT INTO audit_log (actor, action, model, version, detail) VALUES ($1, $2, $3, $4, $5)
"""

AUDIT_TRAIL = "SELECT * FROM audit_log WHERE model = $1 ORDER BY id DESC LIMIT $2"


async def insert_version(conn: Conn, **values: Any) -> bool:
    row = await conn.fetchval(
        UPSERT_VERSION,
        values["model"],
        values["version"],
        values["status"],
        values["kind"],
        values.get("artifact_dir"),
        values.get("files", {}),
        values.get("card", {}),
        values.get("parent_version"),
        values.get("run_id"),
    )
    return row is not None


async def get_version(conn: Conn, model: str, version: str) -> asyncpg.Record | None:
    return await conn.fetchrow(GET_VERSION, model, version)


async def lock_version(conn: Conn, model: str, version: str) -> asyncpg.Record | None:
    return await conn.fetchrow(LOCK_VERSION, model, version)


async def set_status(conn: Conn, model: str, version: str, status: str, by: str) -> None:
    await conn.execute(SET_STATUS, model, version, status, by)


async def lock_alias(conn: Conn, model: str, alias: str) -> str | None:
    value: str | None = await conn.fetchval(ALIAS_FOR_UPDATE, model, alias)
    return value


async def champion(conn: Conn, model: str) -> asyncpg.Record | None:
    return await conn.fetchrow(CHAMPION, model)


async def set_alias(
    conn: Conn,
    model: str,
    alias: str,
    version: str,
    previous: str | None,
    by: str,
    reason: str,
    command_id: Any,
    rollback: bool = False,
) -> None:
    await conn.execute(SET_ALIAS, model, alias, version)
    await conn.execute(
        ALIAS_HISTORY_INSERT, model, alias, version, previous, by, reason, command_id, rollback
    )


def champion_stack(history: list[tuple[str, bool]]) -> list[str]:
    """Champions as a stack: a promotion pushes, a rollback pops. Pure.

    v0 -> r1 -> r2, rollback, rollback gives [v0]: the second rollback goes to v0, not
    back to r2.
    """
    stack: list[str] = []
    for version, rollback in history:
        if rollback and stack:
            stack.pop()
            if not stack or stack[-1] != version:
                stack.append(version)
        else:
            stack.append(version)
    return stack


async def previous_champion(conn: Conn, model: str) -> str | None:
    rows = await conn.fetch(CHAMPION_HISTORY, model)
    stack = champion_stack([(r["version"], r["rollback"]) for r in rows])
    return stack[-2] if len(stack) >= 2 else None


async def alias_history(conn: Conn, model: str, limit: int = 20) -> list[asyncpg.Record]:
    return await conn.fetch(ALIAS_HISTORY, model, limit)


async def stale_candidates(conn: Conn, model: str, before: Any) -> list[asyncpg.Record]:
    return await conn.fetch(STALE_CANDIDATES, model, before)


async def versions(conn: Conn, model: str, limit: int = 20) -> list[asyncpg.Record]:
    return await conn.fetch(VERSIONS, model, limit)


async def audit(
    conn: Conn, actor: str, action: str, model: str | None, version: str | None, detail: Any
) -> None:
    await conn.execute(AUDIT, actor, action, model, version, detail)


async def audit_trail(conn: Conn, model: str, limit: int = 50) -> list[asyncpg.Record]:
    return await conn.fetch(AUDIT_TRAIL, model, limit)


# -- read-only views for the CLI and the web pages --------------------------------------

MODELS_OVERVIEW = """
SELECT v.model,
       count(*) AS versions,
       (SELECT a.version FROM model_aliases a
         WHERE a.model = v.model AND a.alias = 'champion') AS champion,
       count(*) FILTER (WHERE v.status = 'candidate') AS candidates,
       (SELECT r.status FROM retrain_runs r
         WHERE r.model = v.model ORDER BY r.started_at DESC LIMIT 1) AS last_run,
       (SELECT r.started_at FROM retrain_runs r
         WHERE r.model = v.model ORDER BY r.started_at DESC LIMIT 1) AS last_run_at
FROM model_versions v
GROUP BY v.model
ORDER BY v.model
"""

RUNS = """
SELECT id, model, trigger, trigger_detail, status, candidate_version, dataset, gate_report,
       durations, error, started_at, finished_at
FROM retrain_runs WHERE model = $1 ORDER BY started_at DESC LIMIT $2
"""

CANDIDATES = """
SELECT model, version, kind, created_at, run_id, card -> 'metrics' AS metrics,
       card -> 'gate_report' AS gate_report
FROM model_versions WHERE status = 'candidate' ORDER BY created_at
"""


async def models_overview(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(MODELS_OVERVIEW)


async def runs(conn: Conn, model: str, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(RUNS, model, limit)


async def candidates(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(CANDIDATES)
