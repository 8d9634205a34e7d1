"""The worker keeps the cyclic garbage collector off its hot path."""

from __future__ import annotations

import gc

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
