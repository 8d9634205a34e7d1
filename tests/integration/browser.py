"""A real headless browser for tests: Debian's chromium, installed on first use.

Playwright drives it (``executable_path``); Playwright's own browser downloads are never
used. When /usr/bin/chromium is missing it is installed with apt-get (as root); a test
is skipped, saying why, only when that is impossible.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_TIMEOUT = 1200.0


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(
        ["apt-get", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def install_chromium() -> str:
    """Try to install Debian's chromium; '' when it worked, else why not."""
    if shutil.which("apt-get") is None:
        return "there is no apt-get (not a Debian-like system); install Chromium by hand"
    if os.geteuid() != 0:
        return "not running as root: run `sudo apt-get install -y chromium` once"
    install = ("install", "-y", "-q", "chromium")
    done = _apt(*install)
    if done.returncode != 0:
        # A fresh machine may have no package lists yet.
        _apt("update", "-q")
        done = _apt(*install)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return "`apt-get install chromium` failed: " + " | ".join(tail)
    return ""


def ensure_chromium() -> Path:
    """The chromium executable, installing it when missing; skips the test when it cannot
    be had."""
    if CHROMIUM.is_file():
        return CHROMIUM
    why = install_chromium()
    if CHROMIUM.is_file():
        return CHROMIUM
    pytest.skip(f"no Chromium at {CHROMIUM} and it could not be installed: {why or 'unknown'}")
