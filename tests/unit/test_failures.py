"""A timer's repeated failures log once, then once a minute, then its recovery."""

from __future__ import annotations

import logging

import pytest

from workers.failures import FailureLog


def test_an_outage_logs_its_first_failure_a_line_a_minute_and_the_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    failures = FailureLog("horizon sweep", logging.getLogger("t"), clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="t")
    for _ in range(30):  # a tick every 2 s for a minute
        failures.failed(ConnectionRefusedError("connection refused"))
        now[0] += 2.0
    failures.failed(OSError("still down"))
    failures.ok()
    failures.ok()  # nothing more to say
    records = [(r.levelno, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert records == [
        (logging.ERROR, "horizon sweep failed; retrying at the next tick", True),
        (
            logging.WARNING,
            "horizon sweep still failing: 31 times in 60 s; the last: OSError: still down",
            False,
        ),
        (logging.INFO, "horizon sweep works again after 31 failure(s) in 60 s", False),
    ]
    caplog.clear()
    failures.failed(ValueError("again"))  # a new outage starts over
    assert [(r.levelno, r.exc_info is not None) for r in caplog.records] == [(logging.ERROR, True)]
