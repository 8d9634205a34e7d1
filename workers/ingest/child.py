"""`--role all` on one machine: ingestion runs in a child process of its own.

The child is `outcomeloop worker --role ingest` with the same settings; it has its own
CPU time and its own GIL, so monitoring, challengers and retraining in this process can
never slow the hot path. This process runs the loop, restarts the child if it dies, stops
it on shutdown, and reports its health beside its own. On Linux the child also gets
SIGTERM when this process dies, even by SIGKILL (it asks the kernel for that itself,
and ends if its parent is already gone), so no ingester is left running alone.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from typing import Any

import aiohttp

from workers.infra.net import free_port
from workers.settings import Settings, child_env

log = logging.getLogger(__name__)
RESTART_BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
HEALTHY_RUN_SECONDS = 300.0


class IngestChild:
    """Starts, supervises and stops the ingest process of a `--role all` worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = settings.worker.ingest_web_port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        self._spawn()
        self._thread = threading.Thread(target=self._supervise, name="ingest-child", daemon=True)
        self._thread.start()

    def _spawn(self) -> None:
        env = child_env(
            self.settings,
            OL_WORKER__ROLE="ingest",
            OL_WORKER__WEB_ENABLED="true",
            OL_WORKER__WEB_HOST="127.0.0.1",
            OL_WORKER__WEB_PORT=str(self.port),
        )
        argv = [sys.executable, "-m", "workers.cli", "worker", "--role", "ingest"]
        argv += ["--parent-pid", str(os.getpid())]
        self._proc = subprocess.Popen(argv, env=env)
        log.info("ingest process started (pid %d, health on port %d)", self._proc.pid, self.port)

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            proc = self._proc
            assert proc is not None
            began = time.monotonic()
            code = proc.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - began > HEALTHY_RUN_SECONDS:
                self.restarts = 0  # it had been running well: start the backoff over
            wait = RESTART_BACKOFF_SECONDS[min(self.restarts, len(RESTART_BACKOFF_SECONDS) - 1)]
            log.error(
                "ingest process %d exited with %s; restarting in %.0f s", proc.pid, code, wait
            )
            if self._stopping.wait(wait):
                return
            self.restarts += 1
            self._spawn()

    def stop(self) -> None:
        """SIGTERM the child; it stops within its own shutdown timeout (uncommitted events
        are delivered again), and is killed if it does not."""
        self._stopping.set()
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        deadline = time.monotonic() + self.settings.worker.shutdown_timeout_seconds + 5
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()

    async def _get(self, path: str) -> bytes:
        timeout = aiohttp.ClientTimeout(total=self.settings.health.database_timeout_seconds + 1)
        url = f"http://127.0.0.1:{self.port}{path}"
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
            if response.status >= 500 and path != "/health":  # /health says 503 with reasons
                response.raise_for_status()
            return await response.read()

    async def health(self) -> tuple[bool, str]:
        """(ok, reason) from the child's own /health."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return False, "the ingest process is not running (restarting)"
        try:
            body: dict[str, Any] = json.loads(await self._get("/health"))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return False, f"the ingest process (pid {proc.pid}) does not answer: {exc!r}"
        failing = [f"{k}: {c['reason']}" for k, c in body.get("checks", {}).items() if not c["ok"]]
        if failing:
            return False, f"ingest process (pid {proc.pid}): " + "; ".join(failing)
        return True, f"ingest process (pid {proc.pid}) is consuming and keeping up"

    async def metrics(self) -> str | None:
        """The child's /metrics exposition, or None when it does not answer."""
        try:
            return (await self._get("/metrics")).decode()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("the ingest process's /metrics did not answer: %r", exc)
            return None
