"""The processes `make bench` starts and measures: CPU and memory from /proc, sampled.

Linux only: CPU time is utime + stime of /proc/<pid>/stat, memory VmRSS of
/proc/<pid>/status; the parsing itself is in bench_stats.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import numpy as np

from benchmarks import bench_stats as st
from benchmarks import efficacy
from benchmarks.naive_agent import NAIVE_DSN_ENV
from workers.infra.net import free_port
from workers.settings import Role, Settings

REPO = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Processes: CPU and memory from /proc -----------------------------------------------------------


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, CPU ticks with its reaped children) of every process, read once."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            text = _read(f"/proc/{entry.name}/stat")
            if text is not None:
                fields = st.stat_fields(text)
                table[int(entry.name)] = (st.parent_pid(fields), st.cpu_ticks(fields))
    return table


def _family(table: dict[int, tuple[int, int]], pid: int) -> list[int]:
    """``pid`` and its direct children."""
    return [pid, *(p for p, (parent, _) in table.items() if parent == pid)]


def tree_seconds(table: dict[int, tuple[int, int]], pid: int) -> float | None:
    """CPU seconds of a process and its direct children, alive or reaped: PostgreSQL's
    backends and background workers, a worker's training process."""
    if pid not in table:
        return None
    return sum(table[p][1] for p in _family(table, pid)) / CLOCK_TICKS


def cpu_seconds(pid: int) -> float | None:
    return tree_seconds(proc_table(), pid)


def rss_kib(pid: int) -> int | None:
    text = _read(f"/proc/{pid}/status")
    return None if text is None else st.vmrss_kib(text)


def tree_rss_kib(pid: int) -> int | None:
    """VmRSS of a process and its direct children: a `--role all` worker with its ingest
    process (and a training process while one runs)."""
    table = proc_table()
    if pid not in table:
        return None
    return sum(rss_kib(p) or 0 for p in _family(table, pid))


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


class Sampler:
    """CPU seconds of the consumer processes, PostgreSQL (the postmaster and every backend)
    and the broker, sampled on a timer against the wall clock, so the CPU of any span can
    be read off afterwards (the drain's span comes from PostgreSQL's own timestamps)."""

    def __init__(
        self,
        consumers: Callable[[], Sequence[int]],
        postgres: int | None,
        broker: int | None,
        every: float = 0.25,
    ) -> None:
        self._consumers = consumers
        self._postgres = postgres
        self._broker = broker
        self._every = every
        self._last: dict[int, float] = {}  # a consumer that exits keeps its last reading
        self.times: list[float] = []
        self.values: dict[str, list[float]] = {"consumer": [], "postgres": [], "broker": []}

    def sample(self) -> None:
        table = proc_table()
        for pid in self._consumers():
            now = tree_seconds(table, pid)
            if now is not None:
                self._last[pid] = max(now, self._last.get(pid, 0.0))
        self.times.append(time.time())
        self.values["consumer"].append(sum(self._last.values()))
        for name, server in (("postgres", self._postgres), ("broker", self._broker)):
            value = tree_seconds(table, server) if server is not None else None
            self.values[name].append(value if value is not None else float("nan"))

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self._every)

    def series(self, name: str) -> st.Series:
        return st.Series(tuple(self.times), tuple(self.values[name]))

    def cpu(self, name: str, t0: float, t1: float) -> float | None:
        series = self.series(name)
        if not series.covers(t0, t1):
            return None
        value = series.between(t0, t1)
        return None if np.isnan(value) else value


class Child:
    """A consumer process the benchmark started, logging to a file."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], log: Path, port: int | None
    ) -> None:
        self.name = name
        self.log_path = log
        self.port = port
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            argv,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _get(self, path: str) -> tuple[int, str] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=3) as r:
                return int(r.status), r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, ""
        except (urllib.error.URLError, OSError, ValueError):
            return None

    async def metrics(self) -> str:
        if self.port is None or not self.alive():
            return ""
        got = await asyncio.to_thread(self._get, "/metrics")
        return got[1] if got is not None and got[0] == 200 else ""

    async def healthy(self) -> bool:
        got = await asyncio.to_thread(self._get, "/health")
        return got is not None and got[0] == 200

    async def stop(self, cap: float = 20.0) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, cap)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)
        self._log.close()

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait()
        self._log.close()


STARTED: list[Child] = []  # for a last sweep when the benchmark is interrupted


def start_worker(settings: Settings, role: Role, log: Path, name: str) -> Child:
    port = free_port()
    argv = [sys.executable, "-m", "workers.cli", "worker", "--role", role]
    child = Child(name, argv, efficacy.worker_env(settings, port), log, port)
    STARTED.append(child)
    return child


def start_naive(settings: Settings, log: Path) -> Child:
    assert settings.kafka_bootstrap is not None and settings.database_url is not None
    argv = [
        sys.executable,
        "-m",
        "benchmarks.naive_agent",
        "--bootstrap",
        settings.kafka_bootstrap,
        "--app-id",
        settings.app_id,
        "--partitions",
        str(settings.topics.partitions),
        "--data-dir",
        str(settings.data_dir / "naive" / settings.app_id),
        "--session-timeout",
        f"{settings.worker.session_timeout_seconds:g}",
        *settings.topics.ingest_names(),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OL_")}
    env[NAIVE_DSN_ENV] = settings.database_url.get_secret_value()  # not on the command line
    child = Child("naive agent", argv, env, log, None)
    STARTED.append(child)
    return child


async def postgres_server(settings: Settings) -> tuple[int | None, str]:
    """The PostgreSQL server's postmaster pid (None when it runs elsewhere) and version."""
    assert settings.database_url is not None
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        data_dir = await conn.fetchval("SHOW data_directory")
        version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    text = _read(f"{data_dir}/postmaster.pid")
    return (int(text.split()[0]) if text else None), str(version)


def ancestors(pid: int) -> set[int]:
    """``pid`` and its parents up to init."""
    found = set()
    while pid > 1 and pid not in found:
        found.add(pid)
        text = _read(f"/proc/{pid}/stat")
        if text is None:
            break
        pid = st.parent_pid(st.stat_fields(text))
    return found


OTHER_MEASUREMENTS = ("benchmarks.efficacy", "benchmarks.faults", "benchmarks.bench")


def other_measurements() -> set[str]:
    """Other benchmark processes running now (``make efficacy``, ``make faults``, another
    ``make bench``): on a small shared machine they change every number of this run."""
    mine = ancestors(os.getpid())  # this run, and whatever started it (make, timeout)
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        for name in OTHER_MEASUREMENTS:
            if any(arg.decode(errors="replace") == name for arg in args):
                found.add(f"python -m {name}")
    return found


@dataclass(frozen=True)
class Pids:
    postgres: int | None
    broker: int | None

    def postgres_cpu(self) -> float | None:
        return cpu_seconds(self.postgres) if self.postgres is not None else None

    def broker_cpu(self) -> float | None:
        return cpu_seconds(self.broker) if self.broker is not None else None
