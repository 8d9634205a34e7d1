"""Registry actions. Each is one transaction that also writes the audit log, and returns
the event to publish; publishing is the caller's job, after the commit."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from schemas import ModelPromoted, ModelRejected
from workers.errors import RegistryError
from workers.registry import sql

log = logging.getLogger(__name__)
CHAMPION = "champion"
SYSTEM = "outcomeloop"


class Registry:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def champion(self, model: str) -> asyncpg.Record | None:
        async with self.pool.acquire() as conn:
            return await sql.champion(conn, model)

    async def get(self, model: str, version: str) -> asyncpg.Record | None:
        async with self.pool.acquire() as conn:
            return await sql.get_version(conn, model, version)

    async def adopt_external(self, model: str, version: str) -> None:
        """Record the version producers serve today as the first champion, so a retrained
        one can be compared with it and rolled back to it."""
        await self._adopt(
            model,
            version,
            {"kind": "external"},
            "first champion: the version producers were serving",
            only_first=True,
        )

    async def adopt(
        self, model: str, version: str, *, kind: str, artifact_dir: str, files: dict[str, str]
    ) -> str:
        """Record a model trained elsewhere, with its artifact: the first champion when the
        model has none (as `adopt_external`, but recallable and servable), else a candidate
        that waits for ApproveVersion. Returns the status it got."""
        return await self._adopt(
            model,
            version,
            {"kind": kind, "artifact_dir": artifact_dir, "files": files},
            "adopted as the first champion",
            only_first=False,
        )

    async def _adopt(
        self, model: str, version: str, values: dict[str, Any], reason: str, *, only_first: bool
    ) -> str:
        async with self.pool.acquire() as conn, conn.transaction():
            first = await sql.lock_alias(conn, model, CHAMPION) is None
            if only_first and not first:
                return "candidate"
            status = "champion" if first else "candidate"
            note = "with its artifact" if "artifact_dir" in values else "as the first champion"
            inserted = await sql.insert_version(
                conn,
                model=model,
                version=version,
                status=status,
                card={"note": f"trained outside Outcome Loop; adopted {note}"},
                **values,
            )
            if not inserted and not only_first:
                raise RegistryError(f"{model} {version} is already registered")
            if first:
                await sql.set_alias(conn, model, CHAMPION, version, None, SYSTEM, reason, None)
            await sql.audit(conn, SYSTEM, "adopt", model, version, {"status": status})
        return status

    async def register(self, **values: Any) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            if not await sql.insert_version(conn, **values):
                raise RegistryError(f"{values['model']} {values['version']} is already registered")
            await sql.audit(
                conn,
                SYSTEM,
                "register",
                values["model"],
                values["version"],
                {"status": values["status"], "run_id": values.get("run_id")},
            )

    async def promote(
        self,
        model: str,
        version: str,
        *,
        by: str,
        reason: str,
        command_id: UUID | None = None,
        rollback: bool = False,
        replacing: str | None = None,
    ) -> ModelPromoted:
        """``replacing``: only if that version is still the champion (else RegistryError)."""
        async with self.pool.acquire() as conn, conn.transaction():
            target = await sql.lock_version(conn, model, version)
            if target is None:
                raise RegistryError(f"{model} has no version {version!r}")
            allowed = {"candidate", "draft"} | ({"retired", "champion"} if rollback else set())
            if target["status"] not in allowed:
                raise RegistryError(
                    f"{model} {version} is {target['status']}; only a candidate can be promoted"
                )
            previous = await sql.lock_alias(conn, model, CHAMPION)
            if previous == version:
                raise RegistryError(f"{model} {version} is already the champion")
            if replacing is not None and previous != replacing:
                raise RegistryError(f"{model}: the champion is {previous} now, not {replacing}")
            if previous is not None:
                await sql.set_status(conn, model, previous, "retired", by)
            await sql.set_status(conn, model, version, "champion", by)
            await sql.set_alias(
                conn, model, CHAMPION, version, previous, by, reason, command_id, rollback
            )
            await sql.audit(
                conn,
                by,
                "rollback" if rollback else "promote",
                model,
                version,
                {
                    "previous": previous,
                    "reason": reason,
                    "command_id": str(command_id) if command_id else None,
                },
            )
        return ModelPromoted(
            model=model,
            version=version,
            previous_version=previous,
            artifact_dir=target["artifact_dir"],
            files=target["files"],
            by=by,
            reason=reason,
            rollback=rollback,
        )

    async def rollback(
        self, model: str, *, by: str, reason: str, command_id: UUID | None = None
    ) -> ModelPromoted:
        async with self.pool.acquire() as conn:
            previous = await sql.previous_champion(conn, model)
        if previous is None:
            raise RegistryError(f"{model} has no earlier champion to roll back to")
        return await self.promote(
            model,
            previous,
            by=by,
            reason=reason or "rollback",
            command_id=command_id,
            rollback=True,
        )

    async def reject(
        self,
        model: str,
        version: str,
        *,
        by: str,
        reason: str,
        status: str = "rejected",
        command_id: UUID | None = None,
    ) -> ModelRejected:
        async with self.pool.acquire() as conn, conn.transaction():
            target = await sql.lock_version(conn, model, version)
            if target is None:
                raise RegistryError(f"{model} has no version {version!r}")
            if target["status"] not in ("candidate", "draft"):
                raise RegistryError(
                    f"{model} {version} is {target['status']}; only a candidate can be rejected"
                )
            await sql.set_status(conn, model, version, status, by)
            await sql.audit(
                conn,
                by,
                status,
                model,
                version,
                {"reason": reason, "command_id": str(command_id) if command_id else None},
            )
        return ModelRejected(
            model=model,
            version=version,
            by=by,
            reason=reason,
            status="expired" if status == "expired" else "rejected",
        )

    async def expire_stale(
        self, model: str, timeout: timedelta, now: datetime
    ) -> list[ModelRejected]:
        """Candidates that waited longer than the approval timeout are expired."""
        async with self.pool.acquire() as conn:
            stale = await sql.stale_candidates(conn, model, now - timeout)
        return [
            await self.reject(
                model,
                r["version"],
                by=SYSTEM,
                status="expired",
                reason=f"no approval within {timeout.total_seconds():.0f}s",
            )
            for r in stale
        ]
