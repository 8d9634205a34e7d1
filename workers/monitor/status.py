"""The per-model summary behind `/status` and `outcomeloop status`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from workers.db.pool import Conn
from workers.monitor import sql
from workers.settings import Settings


def stale_after(settings: Settings) -> float:
    """Three snapshot intervals, and at least a minute."""
    return max(3 * settings.monitoring.snapshot_interval_seconds, 60.0)


async def summary(
    conn: Conn, now: datetime, *, lookback_days: float = 7, stale_after: float = 60.0
) -> dict[str, Any]:
    """Per model: counts, quality, drift, the retrain loop; and whether the quality
    numbers are stale (examples kept maturing for ``stale_after`` seconds after the
    newest snapshot: the monitor is failing or behind)."""
    since = now - timedelta(days=lookback_days)
    models: dict[str, Any] = {}
    for row in await sql.counts_by_model(conn):
        models[row["model"]] = {
            "predictions": row["predictions"],
            "labeled": row["labeled"],
            "pending": row["pending"],
            "versions": {},
        }

    def version(model: str, name: str) -> dict[str, Any]:
        m = models.setdefault(model, {"predictions": 0, "labeled": 0, "pending": 0, "versions": {}})
        v: dict[str, Any] = m["versions"].setdefault(name, {"quality": {}, "drift": {}})
        return v

    for row in await sql.latest_quality(conn, since):
        if row["segment"]:
            continue
        name = row["model_version"]
        if name.startswith(("challenger:", "champion-vs:")):
            # Shadow challengers and the champion on the very same examples, side by side.
            side, key = name.split(":", 1)
            m = models.setdefault(
                row["model"], {"predictions": 0, "labeled": 0, "pending": 0, "versions": {}}
            )
            entry = m.setdefault("challengers", {}).setdefault(
                key, {"metric": row["metric"], "window": row["window_name"], "n": row["n"]}
            )
            entry["challenger" if side == "challenger" else "champion"] = row["value"]
            continue
        window = version(row["model"], row["model_version"])["quality"].setdefault(
            row["window_name"], {"n": row["n"], "at": row["taken_at"].isoformat()}
        )
        window[row["metric"]] = row["value"]
    for row in await sql.latest_drift(conn, since):
        version(row["model"], row["model_version"])["drift"][row["feature"]] = {
            "method": row["method"],
            "statistic": row["statistic"],
            "p_value": row["p_value"],
            "threshold": row["threshold"],
            "drifted": row["drifted"],
            "n_current": row["n_current"],
            "at": row["computed_at"].isoformat(),
        }
    for row in await sql.retrain_loops(conn):
        m = models.setdefault(
            row["model"], {"predictions": 0, "labeled": 0, "pending": 0, "versions": {}}
        )
        m["retrain"] = {
            "state": row["loop_state"],
            "since": row["loop_since"].isoformat(),
            "reason": row["loop_reason"],
            "version": row["loop_version"],
            "trigger": row["loop_trigger"],
            "change_at": row["change_at"].isoformat() if row["change_at"] else None,
            "attempts": row["attempts"],
            "next_attempt_at": (
                row["next_attempt_at"].isoformat() if row["next_attempt_at"] else None
            ),
            "paused": row["paused"],
        }
    fresh = await sql.freshness(conn)
    behind = (
        (fresh["matured"] - fresh["snapshot"]).total_seconds()
        if fresh["matured"] is not None and fresh["snapshot"] is not None
        else 0.0
    )
    return {
        "generated_at": now.isoformat(),
        "stale": behind > stale_after,
        "stale_reason": (
            f"examples matured {behind:.0f}s after the newest quality snapshot: the monitor "
            "is failing or behind, these numbers are old"
            if behind > stale_after
            else ""
        ),
        "models": models,
    }
