"""glibc's allocator, set for a process that runs for weeks.

glibc serves an allocation of 128 KiB or more with its own mmap, returned to the system
when freed, but it raises that threshold to the size of each such block freed (up to
32 MiB). The ingest process frees a fetch's buffers (up to 1 MiB a partition) and a
batch's arrays every batch, so after the first the big blocks came from the heap, between
small long-lived ones; the holes they left grew the heap by about 0.8 MiB a minute while
the memory in use stayed flat (BENCHMARKS.md, part 4). A fixed threshold keeps big blocks
out of the heap.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's <malloc.h>
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's initial value, kept from then on


def pin_mmap_threshold(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix the mmap threshold (which turns off glibc's raising it). False where there is
    no glibc ``mallopt`` (macOS, musl's no-op): nothing to set there."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, threshold))
    if not done:
        log.debug("mallopt(M_MMAP_THRESHOLD) refused; the allocator keeps its own threshold")
    return done
