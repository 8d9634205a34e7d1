"""Running the real `outcomeloop worker` as a subprocess, and reading what it wrote."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.conftest import settings_env
from workers.settings import Settings, child_env


class WorkerProcess:
    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.log_path = log_path
        env = child_env(settings, **settings_env(settings))
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "worker"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        """Die without any chance to commit: what a crash or OOM kill looks like."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


async def wait_until(
    check: Callable[[], Awaitable[Any]], *, timeout: float, what: str, worker: WorkerProcess
) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        if worker.proc.poll() is not None:
            raise AssertionError(f"worker exited ({worker.proc.returncode}):\n{worker.log_tail()}")
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r}):\n{worker.log_tail()}")
