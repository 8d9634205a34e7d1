"""Handling one command: decode, authorise, deduplicate, act, and answer.

Every command gets results on ol.control.results (accepted, then done / refused /
failed) and rows in `commands` and `audit_log`. A replayed command id is answered with
the stored outcome and does nothing again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import ValidationError

from schemas import (
    ApproveVersion,
    CommandResult,
    ControlCommand,
    PauseModel,
    RejectVersion,
    ResumeModel,
    RetrainModel,
    RollbackModel,
    command_adapter,
)
from schemas.base import utc_now
from workers.control import sql
from workers.control.auth import authorize
from workers.control.signing import accepted_keys
from workers.errors import RegistryError
from workers.ingest import sql as ingest_sql
from workers.ingest.batch import dead_letter
from workers.ingest.decode import RawMessage, validation_reason
from workers.ingest.service import DeadLetterSink, publish_dead_letters
from workers.ingest.sql import DeadLetterRow
from workers.publish import EventPublisher
from workers.registry import sql as registry_sql
from workers.registry.service import Registry
from workers.retrain import sql as retrain_sql
from workers.retrain.service import RetrainService
from workers.settings import Settings

log = logging.getLogger(__name__)


class ControlService:
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        publisher: EventPublisher,
        sink: DeadLetterSink,
        registry: Registry,
        retrain: RetrainService,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.publisher = publisher
        self.sink = sink
        self.registry = registry
        self.retrain = retrain
        self.clock = clock
        self._keys = accepted_keys(settings)
        self._pending: set[asyncio.Task[None]] = set()

    async def _answer(
        self,
        c: ControlCommand,
        status: str,
        detail: str,
        *,
        replayed: bool = False,
        data: dict[str, Any] | None = None,
    ) -> CommandResult:
        result = CommandResult(
            command_id=c.command_id,
            command=c.command,
            model=c.model,
            status=status,  # type: ignore[arg-type]
            detail=detail,
            data=data or {},
            replayed=replayed,
        )
        await self.publisher.publish(self.settings.topics.control_results, result, key=c.command_id)
        return result

    async def _refuse(
        self,
        raw: RawMessage,
        c: ControlCommand,
        reason: str,
        error_type: str,
        payload: dict[str, Any],
    ) -> CommandResult:
        row = dead_letter(raw, reason, error_type, self.settings.limits)
        async with self.pool.acquire() as conn, conn.transaction():
            # Not recorded under its command id: a forged copy of a real command's id must
            # not make the real one look like a replay. The audit log keeps the attempt.
            await registry_sql.audit(
                conn,
                c.issued_by,
                f"refused:{c.command}",
                c.model,
                getattr(c, "version", None),
                {"reason": reason, "command_id": c.command_id, "payload": payload},
            )
            await ingest_sql.insert_dead_letters(conn, [row])
        await self._publish_dead(row)
        log.warning("refused %s from %s: %s", c.command, c.issued_by, reason)
        return await self._answer(c, "refused", reason)

    async def _not_a_command(self, raw: RawMessage, reason: str) -> None:
        row = dead_letter(raw, reason, "invalid_command", self.settings.limits)
        async with self.pool.acquire() as conn:
            await ingest_sql.insert_dead_letters(conn, [row])
        await self._publish_dead(row)

    async def _publish_dead(self, row: DeadLetterRow) -> None:
        await publish_dead_letters(self.sink, self.pool, [row])

    async def handle(self, raw: RawMessage) -> CommandResult | None:
        """Process one message from the control topic; never raises for bad input."""
        try:
            command = command_adapter.validate_json(raw.value)
        except ValidationError as exc:
            await self._not_a_command(raw, f"not a command: {validation_reason(exc)}")
            return None
        if "event_id" not in command.model_fields_set:
            # Its id is the command id: without one, a redelivery would run it again.
            await self._not_a_command(
                raw, "not a command: event_id is required (it is the command id, reused on retry)"
            )
            return None
        payload = command.model_dump(mode="json")
        verdict = authorize(command, raw.value, self.settings.control, self._keys)
        if not verdict.allowed:
            return await self._refuse(
                raw, command, f"not authorised: {verdict.reason}", "unauthorized", payload
            )
        age = (self.clock() - command.issued_at).total_seconds()
        limit = self.settings.control.max_command_age_seconds
        if age > limit or age < -self.settings.time.max_future_skew_seconds:
            return await self._refuse(
                raw,
                command,
                f"issued at {command.issued_at.isoformat()}, {age:.0f}s from now: commands "
                f"are accepted for {limit:g}s (control.max_command_age_seconds)",
                "stale_command",
                payload,
            )
        if command.model not in self.settings.models:
            known = ", ".join(sorted(self.settings.models))
            return await self._refuse(
                raw,
                command,
                f"unknown model {command.model!r} (known: {known})",
                "unknown_model",
                payload,
            )
        async with self.pool.acquire() as conn:
            fresh = await sql.record(conn, command, payload)
            if not fresh:
                seen = await sql.get(conn, command.event_id)
        # A command recorded as accepted whose worker died before acting is finished now
        # (a retrain is the exception: its run is tracked, and may still be going).
        unfinished = (
            not fresh
            and seen is not None
            and seen["status"] == "accepted"
            and command.command != "retrain"
        )
        if unfinished:
            log.warning(
                "command %s was accepted but never finished; finishing it", command.command_id
            )
            fresh = True
        if not fresh:
            assert seen is not None
            log.info(
                "replayed command %s (%s): answered, not repeated",
                command.command_id,
                command.command,
            )
            return await self._answer(
                command,
                seen["status"],
                "already handled: not done again",
                replayed=True,
                data=dict(seen["result"]),
            )
        await self._answer(command, "accepted", verdict.reason)
        try:
            status, detail, data = await self._act(command)
        except RegistryError as exc:
            status, detail, data = "refused", str(exc), {}
        except Exception as exc:
            log.exception("command %s failed", command.command_id)
            status, detail, data = "failed", repr(exc), {}
        if status == "accepted":
            return None  # a retrain answers when it ends
        return await self._settle(command, status, detail, data)

    async def _settle(
        self, c: ControlCommand, status: str, detail: str, data: dict[str, Any]
    ) -> CommandResult:
        async with self.pool.acquire() as conn, conn.transaction():
            await sql.settle(conn, c.event_id, status, {"detail": detail, **data})
            await registry_sql.audit(
                conn,
                c.issued_by,
                c.command,
                c.model,
                getattr(c, "version", None),
                {
                    "status": status,
                    "detail": detail,
                    "reason": c.reason,
                    "command_id": c.command_id,
                },
            )
        log.info("%s %s by %s: %s %s", c.command, c.model, c.issued_by, status, detail)
        return await self._answer(c, status, detail, data=data)

    async def _act(self, c: ControlCommand) -> tuple[str, str, dict[str, Any]]:
        topic = self.settings.topics.models
        why = c.reason or c.command
        if isinstance(c, ApproveVersion):
            promoted = await self.registry.promote(
                c.model, c.version, by=c.issued_by, reason=why, command_id=c.event_id
            )
            await self.publisher.publish(topic, promoted, key=c.model)
            await self.retrain.rearm(c.model, f"{c.version} approved by {c.issued_by}")
            return "done", f"{c.version} is the champion", {"previous": promoted.previous_version}
        if isinstance(c, RejectVersion):
            rejected = await self.registry.reject(
                c.model, c.version, by=c.issued_by, reason=why, command_id=c.event_id
            )
            await self.publisher.publish(topic, rejected, key=c.model)
            await self.retrain.candidate_refused(c.model, f"{c.version} rejected by {c.issued_by}")
            return "done", f"{c.version} rejected", {}
        if isinstance(c, RollbackModel):
            promoted = await self.registry.rollback(
                c.model, by=c.issued_by, reason=why, command_id=c.event_id
            )
            await self.publisher.publish(topic, promoted, key=c.model)
            await self.retrain.rearm(c.model, f"rolled back to {promoted.version}")
            return (
                "done",
                f"champion back to {promoted.version}",
                {"version": promoted.version, "previous": promoted.previous_version},
            )
        if isinstance(c, PauseModel | ResumeModel):
            paused = isinstance(c, PauseModel)
            async with self.pool.acquire() as conn:
                await retrain_sql.set_paused(conn, c.model, paused, c.issued_by, why)
            return "done", "paused: no automatic retrains" if paused else "resumed", {}
        assert isinstance(c, RetrainModel)
        task = await self.retrain.trigger(
            c.model, "command", {"command_id": c.command_id}, by=c.issued_by
        )
        if task is None:
            return "refused", "a retrain of this model is already running", {}

        async def report() -> None:
            run_id = await task
            async with self.pool.acquire() as conn:
                run = await conn.fetchrow(
                    "SELECT status, candidate_version, error, gate_report"
                    " FROM retrain_runs WHERE id = $1",
                    run_id,
                )
            ok = run is not None and run["status"] in ("succeeded", "gated")
            data = {
                "run_id": run_id,
                "run_status": run["status"] if run else None,
                "version": run["candidate_version"] if run else None,
            }
            detail = f"run {run_id} {data['run_status']}"
            if run is not None and run["error"]:
                detail += f": {run['error']}"
            failed = [g for g in (run["gate_report"] if run else []) if not g["passed"]]
            if failed:
                detail += f" at gate {failed[0]['name']}: {failed[0]['reason']}"
            elif data["version"] and data["run_status"] == "succeeded":
                detail += f": {data['version']}"
            await self._settle(c, "done" if ok else "failed", detail, data)

        reporting = asyncio.create_task(report())
        self._pending.add(reporting)
        reporting.add_done_callback(self._pending.discard)
        return "accepted", "retrain started", {}

    async def idle(self) -> None:
        """Wait until every retrain a command started has been answered (tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
