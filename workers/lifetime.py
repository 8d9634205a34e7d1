"""Child processes end with the worker that started them, even when it is SIGKILLed."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int, what: str) -> None:
    """In a child, first thing: SIGTERM when ``parent`` dies (Linux), and exit at once if
    it is already gone (it died before this could be asked for)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        log.warning("parent process %d is gone; %s ends", parent, what)
        raise SystemExit(0)
