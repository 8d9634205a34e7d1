"""Prometheus's promtool for the tests: from PATH, or unpacked once from Debian's
`prometheus` package into .venv/tools (only the binary; no service is installed)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CACHED = REPO / ".venv" / "tools" / "promtool"


def _unpack_from_debian() -> Path | None:
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run(
            ["apt-get", "download", "prometheus"],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=300,
        )
        debs = list(Path(tmp).glob("prometheus_*.deb"))
        if got.returncode != 0 or not debs:
            return None
        subprocess.run(["dpkg", "-x", str(debs[0]), f"{tmp}/x"], check=True, timeout=120)
        CACHED.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f"{tmp}/x/usr/bin/promtool", CACHED)
    return CACHED


def promtool() -> Path:
    """The promtool binary, or skip the test saying why it could not be had."""
    found = shutil.which("promtool")
    if found:
        return Path(found)
    if CACHED.is_file():
        return CACHED
    unpacked = _unpack_from_debian()
    if unpacked is None:
        pytest.skip("promtool is not installed and Debian's prometheus package is unreachable")
    return unpacked


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool()), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
