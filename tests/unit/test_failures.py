"""A timer's repeated failures log once, then once a minute, then its recovery."""

from __future__ import annotations

import logging

import pytest

from workers.failures import FailureLog


def clocked(what: str, caplog: pytest.LogCaptureFixture) -> tuple[list[float], FailureLog]:
    """A FailureLog on a clock the test moves, its records captured."""
    now = [0.0]
    caplog.set_level(logging.INFO, logger="t")
    return now, FailureLog(what, logging.getLogger("t"), clock=lambda: now[0])


def records(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str, bool]]:
    out = [(r.levelno, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    caplog.clear()
    return out


def test_an_outage_logs_its_first_failure_a_line_a_minute_and_the_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now, failures = clocked("horizon sweep", caplog)
    for _ in range(60):  # a tick every 2 s for two minutes
        failures.failed(ConnectionRefusedError("connection refused"))
        now[0] += 2.0
    failures.failed(ConnectionRefusedError("still down"))
    failures.ok()
    failures.ok()  # nothing more to say
    refused = "ConnectionRefusedError"
    assert records(caplog) == [
        (logging.ERROR, "horizon sweep failed; retrying at the next tick", True),
        (
            logging.WARNING,
            f"horizon sweep still failing: 31 times in 60 s; the last: {refused}: "
            "connection refused",
            False,
        ),
        (
            logging.WARNING,
            f"horizon sweep still failing: 61 times in 120 s; the last: {refused}: still down",
            False,
        ),
        (logging.INFO, "horizon sweep works again after 61 failure(s) in 120 s", False),
    ]
    failures.failed(ValueError("again"))  # a new outage starts over
    assert [(level, trace) for level, _, trace in records(caplog)] == [(logging.ERROR, True)]


def test_a_new_kind_of_failure_shows_its_traceback_and_a_gap_starts_afresh(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now, failures = clocked("drift tick", caplog)
    failures.failed(ConnectionRefusedError("down"))
    now[0] += 5
    failures.failed(ConnectionRefusedError("down"))  # the same: quiet
    now[0] += 5
    failures.failed(KeyError("a column"))  # back, and broken another way
    assert [(level, trace) for level, _, trace in records(caplog)] == [
        (logging.ERROR, True),
        (logging.ERROR, True),
    ]
    now[0] += 3600  # no ticks for an hour (another worker led): a new outage
    failures.failed(KeyError("a column"))
    assert [(level, trace) for level, _, trace in records(caplog)] == [(logging.ERROR, True)]
    assert failures.failures == 1


def test_the_level_of_the_first_line_can_be_lower(caplog: pytest.LogCaptureFixture) -> None:
    failures = FailureLog("lag probe", logging.getLogger("t"), level=logging.WARNING)
    caplog.set_level(logging.INFO, logger="t")
    failures.failed(TimeoutError())
    assert [(level, trace) for level, _, trace in records(caplog)] == [(logging.WARNING, True)]
