"""What the end-to-end benchmarks share: a fresh run folder with an embedded broker and
PostgreSQL, and the progress display."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from workers.infra.broker import BrokerHandle, start_tansu
from workers.infra.postgres import PostgresHandle, start_postgres
from workers.settings import Settings


@contextlib.contextmanager
def embedded_run(
    name: str, console: Console, *, keep_data: bool = True
) -> Iterator[tuple[Path, BrokerHandle, PostgresHandle]]:
    """A fresh `<data_dir>/<name>` with its own Tansu and PostgreSQL, stopped on the way
    out. SIGTERM unwinds like Ctrl-C, so nothing is left running; callers stop their own
    worker processes inside the block. ``keep_data=False`` deletes PostgreSQL's files
    afterwards (the logs stay)."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    run_dir = (Settings().data_dir / name).resolve()
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    broker = start_tansu(run_dir / "tansu.log")
    pg = start_postgres(run_dir / "pg")
    console.print(f"embedded Tansu at {broker.bootstrap}, PostgreSQL in {pg.pgdata}")
    try:
        yield run_dir, broker, pg
    finally:
        broker.stop()
        pg.server.cleanup()
        if not keep_data:
            shutil.rmtree(pg.pgdata, ignore_errors=True)


def progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@contextlib.contextmanager
def cpu_hog(processes: int) -> Iterator[None]:
    """``processes`` busy loops beside the benchmark (a loaded machine), ended after it."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
