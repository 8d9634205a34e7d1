"""What the dashboard's JSON endpoints answer: plain JSON-able dicts read from PostgreSQL.

Times for charts are Unix seconds (what the chart library plots); times for people are
ISO 8601 strings.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from workers.dashboard import sql
from workers.db.pool import Conn
from workers.registry import sql as registry_sql
from workers.registry.views import expiry
from workers.settings import METRICS_BY_TASK, Settings, count_window_name, time_window_name

# Rows a chart endpoint reads at most: enough for days of snapshots, light in a browser.
SERIES_LIMIT = 20_000
DEFAULT_HOURS = 24.0
MAX_HOURS = 24.0 * 90


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _epoch(value: datetime) -> float:
    return round(value.timestamp(), 3)


def hours_arg(raw: str | None) -> float:
    """The span a chart covers, from its `hours` query argument; refused when not a number."""
    if raw is None or raw == "":
        return DEFAULT_HOURS
    hours = float(raw)  # ValueError: the caller answers 400
    if not 0 < hours <= MAX_HOURS:
        raise ValueError(f"hours must be in (0, {MAX_HOURS:g}]")
    return hours


def default_series(settings: Settings, model: str) -> tuple[str, str]:
    """The window and metric a model's quality chart starts on: its first alert rule's,
    else its first window and the task's first metric."""
    cfg = settings.models.get(model)
    if cfg is None:
        return count_window_name(500), "mae"
    if cfg.monitor.alerts:
        rule = cfg.monitor.alerts[0]
        return rule.window, rule.metric
    if cfg.monitor.count_windows:
        window = count_window_name(cfg.monitor.count_windows[0])
    elif cfg.monitor.time_windows_seconds:
        window = time_window_name(cfg.monitor.time_windows_seconds[0])
    else:
        window = count_window_name(500)
    return window, METRICS_BY_TASK[cfg.task][0]


def bounds(settings: Settings, model: str, window: str, metric: str) -> list[dict[str, Any]]:
    """Absolute alert bounds configured for this window and metric (drawn on the chart)."""
    cfg = settings.models.get(model)
    out: list[dict[str, Any]] = []
    for rule in cfg.monitor.alerts if cfg is not None else ():
        if rule.window != window or rule.metric != metric:
            continue
        if rule.above is not None:
            out.append({"direction": "above", "value": rule.above})
        elif rule.below is not None:
            out.append({"direction": "below", "value": rule.below})
        else:
            factor = rule.above_reference or rule.below_reference
            out.append({"direction": rule.direction, "value": None, "reference_factor": factor})
    return out


# -- the overview: every model, its loop, its lag; candidates waiting ------------------


async def overview(
    conn: Conn, settings: Settings, now: datetime, *, actions: bool
) -> dict[str, Any]:
    span = settings.monitoring.lag_window_seconds
    since = now - timedelta(seconds=span)
    overview_rows = {r["model"]: r for r in await registry_sql.models_overview(conn)}
    controls = {r["model"]: r for r in await sql.controls(conn)}
    waiting = {r["model"]: r for r in await sql.pending(conn)}
    names = set(settings.models) | set(overview_rows) | set(controls) | set(waiting)
    # By name, so each reaches its window by index (model, time), not a whole-table scan.
    delays = {r["model"]: r for r in await sql.label_delays(conn, since, sorted(names))}
    complete = {r["model"]: r for r in await sql.completeness(conn, since, sorted(names))}

    models = []
    for name in sorted(names):
        cfg = settings.models.get(name)
        reg = overview_rows.get(name)
        ctl = controls.get(name)
        delay = delays.get(name)
        done = complete.get(name)
        pend = waiting.get(name)
        total = int(done["total"]) if done is not None else 0
        q = list(delay["q"]) if delay is not None and delay["q"] is not None else None
        oldest = pend["oldest"] if pend is not None else None
        window, metric = default_series(settings, name)
        models.append(
            {
                "model": name,
                "configured": cfg is not None,
                "task": cfg.task if cfg is not None else None,
                "promotion": cfg.retrain.promotion if cfg is not None else None,
                "champion": reg["champion"] if reg is not None else None,
                "versions": int(reg["versions"]) if reg is not None else 0,
                "candidates": int(reg["candidates"]) if reg is not None else 0,
                "default_window": window,
                "default_metric": metric,
                "retrain": _loop(ctl),
                "lag": {
                    "window_seconds": span,
                    "label_delay_seconds": (
                        {"p50": q[0], "p90": q[1], "p99": q[2]} if q is not None else None
                    ),
                    "labeled_in_window": int(delay["n"]) if delay is not None else 0,
                    "predictions_in_window": total,
                    "with_outcome": int(done["with_outcome"]) if done is not None else 0,
                    "no_outcome": int(done["no_outcome"]) if done is not None else 0,
                    "pending_in_window": int(done["pending"]) if done is not None else 0,
                    "pending_total": int(pend["n"]) if pend is not None else 0,
                    "oldest_pending_at": _iso(oldest),
                    "oldest_pending_seconds": (
                        round((now - oldest).total_seconds()) if oldest is not None else None
                    ),
                },
            }
        )
    return {
        "generated_at": now.isoformat(),
        "actions": actions,
        "models": models,
        "pending": await pending(conn, settings, now),
    }


def _loop(row: Any) -> dict[str, Any] | None:
    """The retrain controller's state, as `outcomeloop status` summarises it."""
    if row is None:
        return None
    return {
        "state": row["loop_state"],
        "since": _iso(row["loop_since"]),
        "reason": row["loop_reason"],
        "version": row["loop_version"],
        "trigger": row["loop_trigger"],
        "change_at": _iso(row["change_at"]),
        "attempts": row["attempts"],
        "next_attempt_at": _iso(row["next_attempt_at"]),
        "paused": row["paused"],
        "paused_by": row["paused_by"],
        "paused_reason": row["paused_reason"],
        "last_auto_retrain_at": _iso(row["last_auto_retrain_at"]),
    }


async def pending(conn: Conn, settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """Candidates waiting for approval, each with its model card and gate report."""
    out = []
    for r in await sql.candidate_cards(conn):
        card: dict[str, Any] = r["card"] or {}
        row: dict[str, Any] = {
            "model": r["model"],
            "version": r["version"],
            "kind": r["kind"],
            "run_id": r["run_id"],
            "parent_version": r["parent_version"],
            "created_at": _iso(r["created_at"]),
            "metrics": card.get("metrics") or {},
            "gate_report": card.get("gate_report") or [],
            "training_window": card.get("training_window") or {},
            "samples": card.get("samples") or {},
            "features": card.get("features"),
            "trigger": card.get("trigger"),
            "expires_at": None,
            "expires_in_seconds": None,
        }
        row.update(expiry(settings, r["model"], r["created_at"], now))
        out.append(row)
    return out


# -- charts -----------------------------------------------------------------------------


async def quality(
    conn: Conn,
    settings: Settings,
    model: str,
    now: datetime,
    *,
    window: str | None,
    metric: str | None,
    hours: float,
) -> dict[str, Any]:
    """One metric over one window, a line per version; the shadow challengers beside the
    champion on the same examples; and the alert bounds to draw."""
    since = now - timedelta(hours=hours)
    choices = [
        {"window": r["window_name"], "metric": r["metric"]}
        for r in await sql.quality_choices(conn, model, since)
        if not r["window_name"].startswith("shadow_")
    ]
    if window is None or metric is None:
        window, metric = default_series(settings, model)
        offered = {(c["window"], c["metric"]) for c in choices}
        if choices and (window, metric) not in offered:
            window, metric = choices[0]["window"], choices[0]["metric"]
    series: dict[str, dict[str, list[Any]]] = {}
    alerts: list[dict[str, Any]] = []
    for r in await sql.quality_series(conn, model, window, metric, since, SERIES_LIMIT):
        s = series.setdefault(r["model_version"], {"t": [], "v": [], "n": []})
        s["t"].append(_epoch(r["taken_at"]))
        s["v"].append(r["value"])
        s["n"].append(r["n"])
        if r["reason"] == "alert":
            alerts.append(
                {"version": r["model_version"], "t": _epoch(r["taken_at"]), "v": r["value"]}
            )
    shadow: dict[str, dict[str, Any]] = {}
    for r in await sql.shadow_series(conn, model, since, SERIES_LIMIT):
        side, _, key = r["model_version"].partition(":")
        label = f"challenger {key}" if side == "challenger" else f"champion (vs {key})"
        s2 = shadow.setdefault(
            label, {"t": [], "v": [], "metric": r["metric"], "window": r["window_name"]}
        )
        s2["t"].append(_epoch(r["taken_at"]))
        s2["v"].append(r["value"])
    return {
        "model": model,
        "window": window,
        "metric": metric,
        "hours": hours,
        "choices": choices,
        "series": series,
        "alerts": alerts,
        "bounds": bounds(settings, model, window, metric),
        "shadow": shadow,
    }


async def drift(
    conn: Conn, model: str, now: datetime, *, version: str | None, hours: float
) -> dict[str, Any]:
    """Per feature of one version: the statistic and its effective threshold over time,
    with the checks that started an episode."""
    since = now - timedelta(hours=hours)
    versions = [r["model_version"] for r in await sql.drift_versions(conn, model, since)]
    if version is None:
        version = versions[0] if versions else None
    features: dict[str, dict[str, Any]] = {}
    if version is not None:
        for r in await sql.drift_series(conn, model, version, since, SERIES_LIMIT):
            f = features.setdefault(
                r["feature"],
                {
                    "feature": r["feature"],
                    "method": r["method"],
                    "t": [],
                    "statistic": [],
                    "threshold": [],
                    "drifted": [],
                    "episodes": [],
                },
            )
            t = _epoch(r["computed_at"])
            f["method"] = r["method"]
            f["t"].append(t)
            f["statistic"].append(r["statistic"])
            f["threshold"].append(r["threshold"])
            f["drifted"].append(r["drifted"])
            if r["episode_start"]:
                f["episodes"].append(t)
        for f in features.values():
            f["drifted_now"] = bool(f["drifted"] and f["drifted"][-1])
    return {
        "model": model,
        "version": version,
        "versions": versions,
        "hours": hours,
        # Inputs first, then __prediction__ and __error__.
        "features": sorted(
            features.values(), key=lambda f: (f["feature"].startswith("__"), f["feature"])
        ),
    }


# -- the timeline: versions, runs, promotions -----------------------------------------


async def timeline(conn: Conn, model: str, *, limit: int = 50) -> dict[str, Any]:
    versions = []
    for r in await sql.versions(conn, model, limit):
        versions.append(
            {
                "version": r["version"],
                "status": r["status"],
                "kind": r["kind"],
                "parent_version": r["parent_version"],
                "run_id": r["run_id"],
                "created_at": _iso(r["created_at"]),
                "decided_at": _iso(r["decided_at"]),
                "decided_by": r["decided_by"],
                "metrics": r["metrics"] or {},
            }
        )
    runs = []
    for r in await sql.runs(conn, model, limit):
        report = r["gate_report"] or []
        failed = next((g for g in report if not g.get("passed")), None)
        durations = r["durations"] or {}
        runs.append(
            {
                "id": r["id"],
                "trigger": r["trigger"],
                "status": r["status"],
                "candidate_version": r["candidate_version"],
                "rows": r["rows"],
                "gate_report": report,
                "failed_gate": failed,
                "durations": durations,
                "seconds": round(sum(float(v) for v in durations.values()), 3),
                "error": r["error"],
                "started_at": _iso(r["started_at"]),
                "finished_at": _iso(r["finished_at"]),
            }
        )
    promotions = [
        {
            "version": r["version"],
            "previous_version": r["previous_version"],
            "set_by": r["set_by"],
            "reason": r["reason"],
            "command_id": str(r["command_id"]) if r["command_id"] is not None else None,
            "rollback": r["rollback"],
            "at": _iso(r["set_at"]),
        }
        for r in await sql.promotions(conn, model, limit)
    ]
    events: list[dict[str, Any]] = []
    for v in versions:
        events.append({"at": v["created_at"], "kind": "version", "version": v})
    for run in runs:
        events.append({"at": run["started_at"], "kind": "run", "run": run})
    for p in promotions:
        kind = "rollback" if p["rollback"] else "promotion"
        events.append({"at": p["at"], "kind": kind, "promotion": p})
    events.sort(key=lambda e: e["at"] or "", reverse=True)
    return {
        "model": model,
        "versions": versions,
        "runs": runs,
        "promotions": promotions,
        "events": events,
    }
