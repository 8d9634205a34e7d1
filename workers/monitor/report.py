"""`outcomeloop status`: the /status summary as tables."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from schemas.base import utc_now
from workers.db.pool import create_pool
from workers.monitor.status import stale_after, summary
from workers.settings import Settings


async def fetch_summary(settings: Settings) -> dict[str, Any]:
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            return await summary(conn, utc_now(), stale_after=stale_after(settings))
    finally:
        await pool.close()


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def render_summary(body: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    if body.get("stale"):
        console.print(f"[red]stale: {body['stale_reason']}")
    if not body["models"]:
        console.print("no predictions yet")
    for model, m in sorted(body["models"].items()):
        console.print(
            f"[bold]{model}[/bold]: {m['predictions']} predictions, {m['labeled']} labeled, "
            f"{m['pending']} pending"
        )
        loop = m.get("retrain")
        if loop is not None:
            colour = {"healthy": "green", "exhausted": "red"}.get(loop["state"], "yellow")
            line = f"  retrain: [{colour}]{loop['state']}[/{colour}] since {loop['since']}"
            if loop["state"] != "healthy":
                line += f" ({loop['trigger']} on {loop['version']}, attempts {loop['attempts']}"
                line += f", change began {loop['change_at'] or 'unknown'})"
            if loop["reason"]:
                line += f": {loop['reason']}"
            if loop["paused"]:
                line += " [paused]"
            console.print(line)
        if m.get("challengers"):
            c = Table(
                title=f"{model}: shadow challengers vs the champion, same examples",
                title_justify="left",
            )
            for col in ("challenger", "metric", "window", "challenger", "champion", "n"):
                c.add_column(col)
            for key, r in sorted(m["challengers"].items()):
                c.add_row(
                    key,
                    r["metric"],
                    r["window"],
                    _fmt(r.get("challenger")),
                    _fmt(r.get("champion")),
                    str(r["n"]),
                )
            console.print(c)
        for version, v in sorted(m["versions"].items()):
            metrics = sorted({k for w in v["quality"].values() for k in w if k not in ("n", "at")})
            if metrics:
                q = Table(title=f"{model} {version}: rolling quality", title_justify="left")
                q.add_column("window")
                q.add_column("n", justify="right")
                for name in metrics:
                    q.add_column(name, justify="right")
                for window, values in sorted(v["quality"].items()):
                    q.add_row(window, str(values["n"]), *(_fmt(values.get(k)) for k in metrics))
                console.print(q)
            if v["drift"]:
                d = Table(title=f"{model} {version}: drift (latest check)", title_justify="left")
                for col in ("feature", "method", "statistic", "threshold", "p", "n", "drifting"):
                    d.add_column(col)
                for feature, r in sorted(v["drift"].items()):
                    d.add_row(
                        feature,
                        r["method"],
                        _fmt(r["statistic"]),
                        _fmt(r["threshold"]),
                        _fmt(r["p_value"]),
                        str(r["n_current"]),
                        "[red]yes" if r["drifted"] else "no",
                    )
                console.print(d)
