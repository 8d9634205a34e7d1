"""What the registry holds, for people: `outcomeloop models|versions|runs|pending`.

Each view is fetched as plain JSON-able dicts (the `--json` output and the web pages use
the same), then rendered as a table.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from workers.db.pool import Conn
from workers.registry import sql
from workers.settings import Settings


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _row(record: Any) -> dict[str, Any]:
    return {k: _plain(v) for k, v in dict(record).items()}


async def models(conn: Conn, settings: Settings) -> list[dict[str, Any]]:
    stored = {r["model"]: _row(r) for r in await sql.models_overview(conn)}
    out = []
    for name in sorted(set(stored) | set(settings.models)):
        cfg = settings.models.get(name)
        row = stored.get(name, {"model": name, "versions": 0, "candidates": 0})
        row["task"] = cfg.task if cfg is not None else None
        row["configured"] = cfg is not None
        row["promotion"] = cfg.retrain.promotion if cfg is not None else None
        out.append(row)
    return out


async def versions(conn: Conn, model: str, limit: int) -> list[dict[str, Any]]:
    return [_row(r) for r in await sql.versions(conn, model, limit)]


def first_failed_gate(report: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    return next((g for g in report or [] if not g.get("passed")), None)


async def runs(conn: Conn, model: str, limit: int) -> list[dict[str, Any]]:
    out = []
    for r in await sql.runs(conn, model, limit):
        row = _row(r)
        row["failed_gate"] = first_failed_gate(row["gate_report"])
        out.append(row)
    return out


def expiry(settings: Settings, model: str, created_at: datetime, now: datetime) -> dict[str, Any]:
    """When a candidate waiting for approval expires (nothing for an unconfigured model)."""
    cfg = settings.models.get(model)
    if cfg is None:
        return {}
    expires = created_at + timedelta(seconds=cfg.retrain.approval_timeout_seconds)
    return {
        "expires_at": expires.isoformat(),
        "expires_in_seconds": round((expires - now).total_seconds()),
    }


async def pending(conn: Conn, settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """Candidates waiting for ApproveVersion, with when they expire."""
    return [
        {**_row(r), **expiry(settings, r["model"], r["created_at"], now)}
        for r in await sql.candidates(conn)
    ]


# -- rendering -------------------------------------------------------------------------

STATUS_COLOURS = {
    "champion": "green",
    "succeeded": "green",
    "candidate": "yellow",
    "running": "yellow",
    "gated": "yellow",
    "rejected": "red",
    "failed": "red",
    "expired": "dim",
    "retired": "dim",
}


def _status(value: str | None) -> str:
    if value is None:
        return "-"
    colour = STATUS_COLOURS.get(value)
    return f"[{colour}]{value}[/{colour}]" if colour else value


def _when(value: str | None) -> str:
    return value[:19].replace("T", " ") if value else "-"


def _metrics(value: dict[str, float] | None) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in (value or {}).items()) or "-"


def render_models(rows: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="models", title_justify="left")
    for column in ("model", "task", "champion", "versions", "candidates", "last run", "at"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["model"] + ("" if r["configured"] else " [dim](not configured)"),
            r["task"] or "-",
            r.get("champion") or "-",
            str(r["versions"]),
            str(r["candidates"]),
            _status(r.get("last_run")),
            _when(r.get("last_run_at")),
        )
    console.print(table)


def render_versions(model: str, rows: list[dict[str, Any]], console: Console) -> None:
    table = Table(title=f"{model}: versions, newest first", title_justify="left")
    for column in (
        "version",
        "status",
        "kind",
        "parent",
        "run",
        "created",
        "decided by",
        "metrics",
    ):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["version"],
            _status(r["status"]),
            r["kind"],
            r["parent_version"] or "-",
            str(r["run_id"] or "-"),
            _when(r["created_at"]),
            r["decided_by"] or "-",
            _metrics(r["metrics"]),
        )
    console.print(table)


def render_runs(model: str, rows: list[dict[str, Any]], console: Console) -> None:
    table = Table(title=f"{model}: retrain runs, newest first", title_justify="left")
    for column in ("run", "trigger", "status", "candidate", "rows", "started", "seconds", "why"):
        table.add_column(column)
    for r in rows:
        gate = r["failed_gate"]
        why = f"gate {gate['name']}: {gate['reason']}" if gate else (r["error"] or "-")
        seconds = sum(float(v) for v in (r["durations"] or {}).values())
        table.add_row(
            str(r["id"]),
            r["trigger"],
            _status(r["status"]),
            r["candidate_version"] or "-",
            str((r["dataset"] or {}).get("rows", "-")),
            _when(r["started_at"]),
            f"{seconds:.1f}",
            why,
        )
    console.print(table)


def render_pending(rows: list[dict[str, Any]], console: Console) -> None:
    if not rows:
        console.print("no candidates wait for approval")
        return
    table = Table(title="candidates waiting for approval", title_justify="left")
    for column in ("model", "version", "run", "created", "expires", "metrics"):
        table.add_column(column)
    for r in rows:
        left = r.get("expires_in_seconds")
        expires = _when(r.get("expires_at"))
        if left is not None:
            expires += f" (in {left / 3600:.1f} h)" if left > 0 else " (due)"
        table.add_row(
            r["model"],
            r["version"],
            str(r["run_id"] or "-"),
            _when(r["created_at"]),
            expires,
            _metrics(r["metrics"]),
        )
    console.print(table)
