"""`outcomeloop demo`: embedded infra, a worker, a drifting scenario, and the whole loop.

The scenario's predictions are scored through the serving client: by the scenario's own
model until Outcome Loop has promoted one of its own, then by that one. Its data drifts
half way; the demo shows the rolling MAE rise past its bound, the drift alerts, the
retrain that fires, its gates, the promotion, and the MAE coming back down.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console
from rich.live import Live
from rich.table import Table

from schemas.base import utc_now
from workers.db.pool import Conn, create_pool
from workers.infra.embedded import ensure_infra
from workers.infra.net import free_port
from workers.ingest import sql
from workers.monitor import sql as monitor_sql
from workers.registry import sql as registry_sql
from workers.retrain import sql as retrain_sql
from workers.serving.client import ServingClient
from workers.settings import METRICS_BY_TASK, Settings, child_env, count_window_name
from workers.synth.run import run_scenario
from workers.synth.spec import ScenarioSpec
from workers.worker import prepare

console = Console()


@dataclass
class _Watch:
    """What the live display shows of the monitor and the registry."""

    model: str
    window: str
    metric: str
    value: float | None = None
    version: str | None = None
    alerts: int = 0
    drift: list[str] = field(default_factory=list)
    champion: str | None = None
    runs: list[str] = field(default_factory=list)

    async def refresh(self, conn: Conn, since: datetime) -> None:
        series = await self.series(conn, since)
        if series:
            self.value, self.version = series[-1]["value"], series[-1]["model_version"]
        self.alerts = sum(1 for r in series if r["reason"] == "alert")
        self.drift = [
            f"{r['feature']} ({r['method']}, {r['model_version']})"
            for r in await self.episodes(conn, since)
        ]
        champ = await registry_sql.champion(conn, self.model)
        self.champion = champ["version"] if champ else None
        self.runs = [
            f"run {r['id']}: {r['trigger']} → {r['status']}"
            + (f" ({r['candidate_version']})" if r["candidate_version"] else "")
            for r in reversed(await retrain_sql.runs(conn, self.model, 5))
        ]

    async def series(self, conn: Conn, since: datetime) -> list[asyncpg.Record]:
        return await monitor_sql.metric_series(conn, self.model, self.window, self.metric, since)

    async def episodes(self, conn: Conn, since: datetime) -> list[asyncpg.Record]:
        rows = await monitor_sql.episodes_since(conn, since)
        return [r for r in rows if r["model"] == self.model]


def _progress_table(
    counts: dict[str, int], sent: int, total: int, elapsed: float, watch: _Watch
) -> Table:
    table = Table(title=f"Outcome Loop demo, {elapsed:5.1f}s", title_justify="left")
    table.add_column("")
    table.add_column("now", justify="right")
    table.add_row("messages sent", f"{sent} / {total}")
    for label, key in (
        ("predictions stored", "predictions"),
        ("outcomes stored", "outcomes"),
        ("feedback stored", "feedback"),
        ("matured with a label", "labeled"),
        ("pending", "pending"),
        ("dropped at horizon", "dropped"),
        ("dead-lettered", "dead_letters"),
    ):
        table.add_row(label, str(counts.get(key, 0)))
    value = "-" if watch.value is None else f"{watch.value:.4f} ({watch.version})"
    table.add_row(f"rolling {watch.metric.upper()} ({watch.window})", value)
    table.add_row("quality alerts", str(watch.alerts))
    table.add_row("drift alerts", "\n".join(watch.drift) or "none")
    table.add_row("retrain runs", "\n".join(watch.runs) or "none")
    table.add_row("champion", watch.champion or "-")
    return table


def _start_worker(
    settings: Settings, log_path: Path, port: int, token: str | None
) -> subprocess.Popen[bytes]:
    extra = {"OL_WORKER__WEB_PORT": str(port)}
    if token is not None:
        extra["OL_DASHBOARD_TOKEN"] = token
    env = child_env(settings, **extra)
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def _drive(
    settings: Settings, spec: ScenarioSpec, started: datetime, timeout: float
) -> tuple[bool, list[Check]]:
    """Produce the scenario while showing live counts; wait for every prediction to mature."""
    pool = await create_pool(settings, max_size=2)
    client = ServingClient(settings, spec.name)
    await client.start()
    progress = {"sent": 0, "total": 0}

    def on_progress(done: int, total: int) -> None:
        progress.update(sent=done, total=total)

    def scorer(features: dict[str, Any]) -> tuple[float, str] | None:
        if client.champion is None:
            return None  # the scenario's own model, trained outside Outcome Loop
        answer = client.score(features)
        return answer.score, answer.version

    cfg = settings.models[spec.name]
    rule = cfg.monitor.alerts[0] if cfg.monitor.alerts else None
    watch = _Watch(
        spec.name,
        rule.window if rule else count_window_name(cfg.monitor.count_windows[0]),
        rule.metric if rule else METRICS_BY_TASK[cfg.task][0],
    )
    began = time.monotonic()
    producer = asyncio.create_task(run_scenario(settings, spec, on_progress, scorer))
    settled = False
    try:
        with Live(console=console, refresh_per_second=4) as live:
            while time.monotonic() - began < timeout:
                async with pool.acquire() as conn:
                    counts = await sql.run_counts(conn, spec.run_id, started)
                    await watch.refresh(conn, started)
                live.update(
                    _progress_table(
                        counts, progress["sent"], progress["total"], time.monotonic() - began, watch
                    )
                )
                if producer.done():
                    producer.result()  # surface a producer failure
                    if counts["predictions"] >= spec.count and counts["pending"] == 0:
                        settled = True
                        break
                await asyncio.sleep(0.5)
        await asyncio.sleep(settings.monitoring.snapshot_interval_seconds)  # a last snapshot
        await _summary(pool, spec, started, watch)
        checks = await verdict(pool, settings, spec)
        _print_verdict(checks)
        if client.stats.answers:
            console.print(
                f"the serving client answered {client.stats.answers} predictions: "
                + ", ".join(f"{n} by {v}" for v, n in client.stats.by_version.items())
            )
    finally:
        producer.cancel()
        await client.stop()
        await pool.close()
    return settled, checks


async def _summary(
    pool: asyncpg.Pool, spec: ScenarioSpec, started: datetime, watch: _Watch
) -> None:
    async with pool.acquire() as conn:
        counts = await sql.run_counts(conn, spec.run_id, started)
        quality = await sql.run_quality(conn, spec.run_id, int(spec.drift_at * spec.count))
        dead = await sql.dead_letters_since(conn, started)
        series = await watch.series(conn, started)
        episodes = await watch.episodes(conn, started)
        runs = await retrain_sql.runs(conn, spec.name, 10)
        history = await registry_sql.alias_history(conn, spec.name, 10)
        standings = await monitor_sql.shadow_standings(conn, spec.name, started)
    table = Table(title="Read back from PostgreSQL", title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, key in (
        ("predictions", "predictions"),
        ("labeled by an outcome", "by_outcome"),
        ("labeled by feedback", "by_feedback"),
        ("labeled 'no outcome' (negative)", "by_no_outcome"),
        ("dropped (no outcome, model drops)", "dropped"),
        ("still pending", "pending"),
        ("dead-lettered messages", "dead_letters"),
    ):
        table.add_row(label, str(counts[key]))
    console.print(table)
    if quality:
        q = Table(title=f"Error on matured examples, '{spec.name}'", title_justify="left")
        q.add_column("segment")
        q.add_column("examples", justify="right")
        q.add_column("MAE", justify="right")
        for row in quality:
            segment = "after drift" if row["after_drift"] else "before drift"
            q.add_row(segment, str(row["n"]), f"{row['mae']:.4f}")
        console.print(q)
    if series:
        t = Table(
            title=f"Rolling {watch.metric.upper()} ({watch.window}) as the monitor recorded it",
            title_justify="left",
        )
        for col in ("at (s)", "version", watch.metric.upper(), "examples", ""):
            t.add_column(col, justify="right" if col != "" else "left")
        step = max(len(series) // 14, 1)
        shown = [r for i, r in enumerate(series) if i % step == 0 or r["reason"] == "alert"]
        for r in shown:
            at = (r["taken_at"] - started).total_seconds()
            note = "[red]alert: crossed its bound" if r["reason"] == "alert" else ""
            t.add_row(f"{at:.0f}", r["model_version"], f"{r['value']:.4f}", str(r["n"]), note)
        console.print(t)
    if episodes:
        e = Table(title="Drift episodes (one alert each)", title_justify="left")
        for col in ("at (s)", "version", "feature", "method", "statistic", "threshold"):
            e.add_column(col)
        for r in episodes:
            e.add_row(
                f"{(r['computed_at'] - started).total_seconds():.0f}",
                r["model_version"],
                r["feature"],
                r["method"],
                f"{r['statistic']:.4f}",
                f"{r['threshold']:.4f}",
            )
        console.print(e)
    for run in reversed(runs):
        gates = Table(
            title=f"Retrain run {run['id']}: {run['trigger']} → {run['status']}"
            + (f", version {run['candidate_version']}" if run["candidate_version"] else ""),
            title_justify="left",
        )
        for col in ("gate", "passed", "reason"):
            gates.add_column(col)
        for gate in run["gate_report"]:
            gates.add_row(gate["name"], "yes" if gate["passed"] else "[red]no", gate["reason"][:70])
        console.print(gates)
        durations = ", ".join(f"{k} {v:.2f}s" for k, v in run["durations"].items())
        console.print(
            f"  stages: {durations}" + (f"; error: {run['error']}" if run["error"] else "")
        )
    if history:
        h = Table(title="Champion history", title_justify="left")
        for col in ("at (s)", "version", "previous", "by", "reason"):
            h.add_column(col)
        for row in reversed(history):
            h.add_row(
                f"{(row['set_at'] - started).total_seconds():.0f}",
                row["version"],
                row["previous_version"] or "-",
                row["set_by"],
                row["reason"][:50],
            )
        console.print(h)
    if standings:
        by_key: dict[str, dict[str, Any]] = {}
        for row in standings:
            side, key = row["model_version"].split(":", 1)
            by_key.setdefault(key, {})[side] = row
        sh = Table(
            title="Shadow challengers (River, learning online) vs the champion, same examples",
            title_justify="left",
        )
        for col in ("challenger", "metric", "challenger", "champion", "examples"):
            sh.add_column(col)
        for key, sides in sorted(by_key.items()):
            mine, champ = sides.get("challenger"), sides.get("champion-vs")
            if mine is None or champ is None:
                continue
            sh.add_row(
                key, mine["metric"], f"{mine['value']:.4f}", f"{champ['value']:.4f}", str(mine["n"])
            )
        console.print(sh)
    if dead:
        d = Table(title="Dead letters by reason", title_justify="left")
        d.add_column("error type")
        d.add_column("n", justify="right")
        d.add_column("example reason")
        for row in dead:
            d.add_row(row["error_type"], str(row["n"]), row["example"][:90])
        console.print(d)


@dataclass(frozen=True)
class Check:
    what: str
    ok: bool
    detail: str


async def verdict(pool: asyncpg.Pool, settings: Settings, spec: ScenarioSpec) -> list[Check]:
    """Did the loop do its job on this run? Drift → alert → a retrain on post-change data →
    promotion (or a candidate waiting for approval) → quality back down."""
    cfg = settings.models[spec.name]
    onset = int(spec.drift_at * spec.count)
    async with pool.acquire() as conn:
        runs = list(reversed(await retrain_sql.runs(conn, spec.name, 20)))
        history = await registry_sql.alias_history(conn, spec.name, 20)
        by_version = {
            r["model_version"]: r for r in await sql.run_version_quality(conn, spec.run_id, onset)
        }
        loop = await retrain_sql.control(conn, spec.name)
        checks: list[Check] = []
        auto = [r for r in runs if r["trigger"] in ("quality_alert", "drift")]
        checks.append(
            Check(
                "the drift was noticed and opened the retrain loop",
                bool(auto),
                f"run {auto[0]['id']} by {auto[0]['trigger']}" if auto else "no run by an alert",
            )
        )
        trained = next((r for r in auto if r["dataset"].get("train", {}).get("n")), None)
        share = 0.0
        if trained is not None:
            d = trained["dataset"]
            span = (d["train"]["from"], d["validation"].get("to") or d["train"]["to"])
            n, after = await sql.run_after_drift_share(
                conn,
                spec.run_id,
                onset,
                *(datetime.fromisoformat(t) for t in span),
            )
            share = after / n if n else 0.0
        checks.append(
            Check(
                "the retrain learned from data after the change",
                trained is not None and share >= 0.8,
                f"{share:.0%} of run {trained['id']}'s rows were predicted after the drift"
                if trained is not None
                else "no run trained on any rows",
            )
        )
    good = [r for r in auto if r["status"] == "succeeded" and r["candidate_version"]]
    promoted = {h["version"] for h in history}
    if cfg.retrain.promotion == "approval":
        checks.append(
            Check(
                "a candidate passed its gates and waits for approval",
                bool(good),
                f"{good[0]['candidate_version']}: approve it with `outcomeloop approve "
                f"{spec.name} {good[0]['candidate_version']}`"
                if good
                else f"no run passed its gates (loop: {loop['loop_state']}, {loop['loop_reason']})",
            )
        )
        return checks
    new = next((r["candidate_version"] for r in good if r["candidate_version"] in promoted), None)
    checks.append(
        Check(
            "a retrained version was promoted",
            new is not None,
            f"{new} is the champion"
            if new
            else f"none (loop: {loop['loop_state']}: {loop['loop_reason']})",
        )
    )
    old = by_version.get(spec.version)
    fixed = by_version.get(new) if new else None
    ok = (
        old is not None
        and fixed is not None
        and fixed["n"] >= 100
        and fixed["mae"] <= 0.8 * old["mae"]
    )
    checks.append(
        Check(
            "quality came back down after the promotion",
            ok,
            (
                f"MAE after the drift: {spec.version} {old['mae']:.4f} on {old['n']}, "
                f"{new} {fixed['mae']:.4f} on {fixed['n']}"
            )
            if old is not None and fixed is not None
            else "the new version scored no matured examples before the stream ended",
        )
    )
    return checks


def _print_verdict(checks: list[Check]) -> None:
    t = Table(title="Did the loop do its job?", title_justify="left")
    for col in ("", "check", "evidence"):
        t.add_column(col)
    for c in checks:
        t.add_row("[green]yes" if c.ok else "[red]NO", c.what, c.detail)
    console.print(t)


def _dashboard_token(settings: Settings) -> tuple[str, bool]:
    """OL_DASHBOARD_TOKEN when set; else a fresh one for this run (and True: print it)."""
    if settings.dashboard_token is not None:
        return settings.dashboard_token.get_secret_value(), False
    return secrets.token_urlsafe(16), True


def _serve_until_interrupted(
    worker: subprocess.Popen[bytes], url: str, token: str, show_token: bool
) -> None:
    """Keep the worker (and its dashboard) up until Ctrl-C or until it exits."""
    console.print(f"\n[bold]dashboard: {url}[/bold]", soft_wrap=True)
    if show_token:
        console.print(
            f"operator token for this run (approve, reject, roll back): {token}",
            soft_wrap=True,
            markup=False,
        )
    else:
        console.print("operator token: the OL_DASHBOARD_TOKEN you set")
    console.print("the worker keeps running; press Ctrl-C to stop it and the embedded infra")
    # Ctrl-C must work even when a parent shell started us with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while worker.poll() is None:
            time.sleep(0.5)
        console.print(f"the worker stopped (exit status {worker.returncode})")
    except KeyboardInterrupt:
        console.print("stopping the worker and the embedded infra")


def run_demo(
    settings: Settings, spec: ScenarioSpec, *, timeout: float, exit_at_end: bool = False
) -> int:
    """Run the scenario and print the verdict; then, unless `exit_at_end`, keep the worker
    up with its dashboard until Ctrl-C. The exit status is the verdict's either way."""
    run_id = f"demo{int(time.time())}"
    # A version of its own per run, so drift references and windows start fresh.
    spec = ScenarioSpec(**{**spec.__dict__, "run_id": run_id, "version": f"v1-{run_id[4:]}"})
    if settings.kafka_bootstrap is None and settings.database_url is None:
        # Embedded: a broker and database of its own, fresh each run, so the summary and
        # the registry are this run's alone (`infra up` state is left untouched).
        demo_dir = settings.data_dir / "demo"
        shutil.rmtree(demo_dir, ignore_errors=True)
        settings = settings.model_copy(update={"data_dir": demo_dir})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with ensure_infra(settings) as resolved:
        asyncio.run(prepare(resolved))
        log_path = resolved.data_dir / "demo-worker.log"
        console.print(f"starting the worker (log: {log_path})")
        port = free_port()
        token, show_token = _dashboard_token(resolved)
        worker = _start_worker(resolved, log_path, port, token)
        try:
            started = utc_now()
            console.print(
                f"sending scenario '{spec.name}': {spec.count} predictions at {spec.rate:.0f}/s, "
                f"drift after {spec.drift_at:.0%}, run id {run_id}"
            )
            settled, checks = asyncio.run(_drive(resolved, spec, started, timeout))
            status = _report(settled, checks, timeout, log_path)
            if not exit_at_end:
                host = resolved.worker.web_host
                if host in ("0.0.0.0", "::", ""):
                    host = "127.0.0.1"
                url = f"http://{host}:{port}/dashboard"
                _serve_until_interrupted(worker, url, token, show_token)
        finally:
            _stop(worker)
    return status


def _report(settled: bool, checks: list[Check], timeout: float, log_path: Path) -> int:
    failed = [c.what for c in checks if not c.ok]
    if not settled:
        failed.insert(0, f"not every prediction matured within {timeout:.0f}s")
    if failed:
        console.print("[red]the demo failed: " + "; ".join(failed) + f" (worker log: {log_path})")
        return 1
    console.print("[green]every prediction matured and the loop recovered from the drift.")
    return 0
