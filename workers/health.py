"""Whether a worker is ready: the checks behind /health, with their reasons. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from workers.settings import HealthConfig


@dataclass(frozen=True)
class Observed:
    """What the worker knows about itself at one moment."""

    now: datetime
    database_error: str | None  # None: PostgreSQL answered within the timeout
    assigned_partitions: int
    started_at: datetime
    last_batch_at: datetime | None
    consumer_lag: int | None  # messages not yet consumed, from the last lag probe
    leader: bool
    monitor_ok_at: datetime | None  # the last monitor tick that succeeded
    monitor_error: str | None  # the last tick's error, if it failed
    ingest_process: tuple[bool, str] | None = None  # role all: (ok, reason) of the child


def assess(o: Observed, cfg: HealthConfig) -> dict[str, Any]:
    """The /health body: ``ok`` and one entry per check, each with its reason."""
    checks: dict[str, dict[str, Any]] = {}

    def check(name: str, ok: bool, reason: str) -> None:
        checks[name] = {"ok": ok, "reason": reason}

    check(
        "database",
        o.database_error is None,
        "PostgreSQL answers" if o.database_error is None else o.database_error,
    )
    check(
        "consuming",
        o.assigned_partitions > 0,
        f"{o.assigned_partitions} partition(s) assigned"
        if o.assigned_partitions
        else "no partitions assigned (joining the group, or the broker is unreachable)",
    )
    since = o.last_batch_at or o.started_at
    idle = (o.now - since).total_seconds()
    stalled = bool(o.consumer_lag) and idle > cfg.stall_seconds
    check(
        "ingesting",
        not stalled,
        f"no batch stored for {idle:.0f}s while {o.consumer_lag} message(s) wait"
        if stalled
        else "keeping up",
    )
    if o.ingest_process is not None:
        check("ingest_process", *o.ingest_process)
    if o.leader:
        ran = o.monitor_ok_at or o.started_at
        behind = (o.now - ran).total_seconds()
        ok = behind <= cfg.monitor_stale_seconds
        reason = "monitor ticks on time"
        if not ok:
            reason = f"no monitor tick succeeded for {behind:.0f}s"
            if o.monitor_error:
                reason += f"; last error: {o.monitor_error}"
        check("monitoring", ok, reason)
    return {
        "ok": all(c["ok"] for c in checks.values()),
        "consuming": checks["consuming"]["ok"],
        "checks": checks,
        "reasons": [f"{k}: {c['reason']}" for k, c in checks.items() if not c["ok"]],
        "leader": o.leader,
        "last_batch_at": o.last_batch_at.isoformat() if o.last_batch_at else None,
    }
