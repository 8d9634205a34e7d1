"""The monitor's deferral while ingestion is behind."""

from __future__ import annotations

from workers.monitor.deferral import Deferral


def test_caught_up_feeds_everything() -> None:
    d = Deferral(seconds=30)
    assert d.limit(0.0, newest=500, fed=0) is None


def test_behind_it_feeds_only_what_matured_that_long_ago() -> None:
    d = Deferral(seconds=30, behind=True)
    assert d.limit(0.0, newest=100, fed=40) == 40  # nothing old enough yet
    assert d.limit(10.0, newest=300, fed=40) == 40
    assert d.limit(30.0, newest=500, fed=40) == 100  # what had matured at t=0
    assert d.limit(41.0, newest=900, fed=100) == 300  # ... at t=10
    assert d.limit(41.5, newest=950, fed=300) == 300


def test_it_never_goes_back_below_what_was_fed() -> None:
    d = Deferral(seconds=30, behind=True)
    d.limit(0.0, newest=100, fed=0)
    assert d.limit(31.0, newest=200, fed=150) == 150


def test_catching_up_forgets_the_marks() -> None:
    d = Deferral(seconds=30, behind=True)
    d.limit(0.0, newest=100, fed=0)
    d.behind = False
    assert d.limit(5.0, newest=200, fed=0) is None
    d.behind = True
    # Behind again: the old mark is gone, so it waits its full time again.
    assert d.limit(40.0, newest=300, fed=200) == 200
    assert d.limit(70.0, newest=400, fed=200) == 300


def test_zero_seconds_never_defers() -> None:
    d = Deferral(seconds=0, behind=True)
    assert d.limit(0.0, newest=100, fed=0) is None
