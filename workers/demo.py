"""`outcomeloop demo`: embedded infra, a worker, a drifting scenario, and what happened."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from schemas.base import utc_now
from workers.db.pool import create_pool
from workers.infra.embedded import ensure_infra
from workers.infra.net import free_port
from workers.ingest import sql
from workers.settings import Settings, child_env
from workers.synth.run import run_scenario
from workers.synth.spec import ScenarioSpec
from workers.worker import prepare

console = Console()


def _progress_table(counts: dict[str, int], sent: int, total: int, elapsed: float) -> Table:
    table = Table(title=f"Outcome Loop demo, {elapsed:5.1f}s", title_justify="left")
    table.add_column("")
    table.add_column("count", justify="right")
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
    return table


def _start_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    env = child_env(settings, OL_WORKER__WEB_PORT=str(free_port()))
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


async def _drive(settings: Settings, spec: ScenarioSpec, started: datetime, timeout: float) -> bool:
    """Produce the scenario while showing live counts; wait for every prediction to mature."""
    pool = await create_pool(settings, max_size=2)
    progress = {"sent": 0, "total": 0}

    def on_progress(done: int, total: int) -> None:
        progress.update(sent=done, total=total)

    began = time.monotonic()
    producer = asyncio.create_task(run_scenario(settings, spec, on_progress))
    settled = False
    try:
        with Live(console=console, refresh_per_second=4) as live:
            while time.monotonic() - began < timeout:
                async with pool.acquire() as conn:
                    counts = await sql.run_counts(conn, spec.run_id, started)
                live.update(
                    _progress_table(
                        counts, progress["sent"], progress["total"], time.monotonic() - began
                    )
                )
                if producer.done():
                    producer.result()  # surface a producer failure
                    if counts["predictions"] >= spec.count and counts["pending"] == 0:
                        settled = True
                        break
                await asyncio.sleep(0.5)
        await _summary(pool, spec, started)
    finally:
        producer.cancel()
        await pool.close()
    return settled


async def _summary(pool: object, spec: ScenarioSpec, started: datetime) -> None:
    async with pool.acquire() as conn:  # type: ignore[attr-defined]
        counts = await sql.run_counts(conn, spec.run_id, started)
        quality = await sql.run_quality(conn, spec.run_id, int(spec.drift_at * spec.count))
        dead = await sql.dead_letters_since(conn, started)
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
        q = Table(
            title=f"Error of the '{spec.name}' champion on matured examples", title_justify="left"
        )
        q.add_column("segment")
        q.add_column("examples", justify="right")
        q.add_column("MAE", justify="right")
        for row in quality:
            q.add_row(
                "after drift" if row["after_drift"] else "before drift",
                str(row["n"]),
                f"{row['mae']:.4f}",
            )
        console.print(q)
    if dead:
        d = Table(title="Dead letters by reason", title_justify="left")
        d.add_column("error type")
        d.add_column("n", justify="right")
        d.add_column("example reason")
        for row in dead:
            d.add_row(row["error_type"], str(row["n"]), row["example"][:90])
        console.print(d)


def run_demo(settings: Settings, spec: ScenarioSpec, *, timeout: float) -> int:
    run_id = f"demo{int(time.time())}"
    spec = ScenarioSpec(**{**spec.__dict__, "run_id": run_id})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with ensure_infra(settings) as resolved:
        asyncio.run(prepare(resolved))
        log_path = resolved.data_dir / "demo-worker.log"
        console.print(f"starting the worker (log: {log_path})")
        worker = _start_worker(resolved, log_path)
        try:
            started = utc_now()
            console.print(
                f"sending scenario '{spec.name}': {spec.count} predictions at {spec.rate:.0f}/s, "
                f"drift after {spec.drift_at:.0%}, run id {run_id}"
            )
            settled = asyncio.run(_drive(resolved, spec, started, timeout))
        finally:
            _stop(worker)
    if not settled:
        console.print(f"[red]not every prediction matured within {timeout:.0f}s; see {log_path}")
        return 1
    console.print("[green]every prediction matured; the demo is done.")
    return 0
