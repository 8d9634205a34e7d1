"""The worker keeps the cyclic garbage collector off its hot path."""

from __future__ import annotations

import gc
import platform
import subprocess
import sys

import pytest

from workers.worker import GC_YOUNG_THRESHOLD, settle_heap


def test_settling_freezes_the_start_up_heap_and_collects_young_objects_less_often() -> None:
    before = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_freeze_count() > 1000  # everything imported so far
        assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
        # Cycles are still found and freed.
        a: list[object] = []
        a.append(a)
        del a
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


# In a fresh interpreter: free one big block (glibc then raises its mmap threshold past
# that size), optionally pin the threshold, and report whether the next block of that
# size is mmapped (mallinfo2's hblks counts the mmapped blocks in use).
_PROBE = """
import ctypes, sys
from workers.malloc import pin_mmap_threshold

class MallInfo2(ctypes.Structure):
    names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
    _fields_ = [(n, ctypes.c_size_t) for n in names.split()]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
size = 1 << 20
freed = bytearray(size)  # mmapped...
del freed  # ...and freed: glibc raises its threshold above 1 MiB
if sys.argv[1] == "pin":
    assert pin_mmap_threshold()
before = libc.mallinfo2().hblks
block = bytearray(size)
print(libc.mallinfo2().hblks - before)
"""


def _mmapped_after_a_free(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="mallinfo2 and the mmap threshold are glibc's",
)
def test_a_pinned_mmap_threshold_keeps_big_blocks_out_of_the_heap() -> None:
    # glibc's own behaviour, which fragmented the ingest process's heap: after a big
    # block is freed, the next one of its size comes from the heap.
    assert _mmapped_after_a_free("default") == 0
    assert _mmapped_after_a_free("pin") == 1
