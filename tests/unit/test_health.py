"""/health's verdicts and their reasons. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workers.health import Observed, assess
from workers.settings import HealthConfig

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CFG = HealthConfig(stall_seconds=60, monitor_stale_seconds=30)


def observed(**kw: object) -> Observed:
    base: dict[str, object] = {
        "now": NOW,
        "database_error": None,
        "assigned_partitions": 4,
        "started_at": NOW - timedelta(hours=1),
        "last_batch_at": NOW - timedelta(seconds=5),
        "consumer_lag": 0,
        "leader": True,
        "monitor_ok_at": NOW - timedelta(seconds=2),
        "monitor_error": None,
    }
    base.update(kw)
    return Observed(**base)  # type: ignore[arg-type]


def test_a_healthy_worker_is_ready() -> None:
    body = assess(observed(), CFG)
    assert body["ok"] and body["consuming"] and body["reasons"] == []


def test_postgresql_down_is_not_ready() -> None:
    body = assess(observed(database_error="PostgreSQL did not answer within 2s"), CFG)
    assert not body["ok"] and body["reasons"] == ["database: PostgreSQL did not answer within 2s"]


def test_a_stall_counts_only_while_messages_wait() -> None:
    quiet = observed(last_batch_at=NOW - timedelta(minutes=10), consumer_lag=0)
    assert assess(quiet, CFG)["ok"]  # nothing to consume is not a stall
    stuck = observed(last_batch_at=NOW - timedelta(minutes=10), consumer_lag=500)
    body = assess(stuck, CFG)
    assert not body["ok"]
    assert body["checks"]["ingesting"]["reason"] == (
        "no batch stored for 600s while 500 message(s) wait"
    )


def test_a_failing_monitor_makes_the_leader_unready() -> None:
    failing = observed(
        monitor_ok_at=NOW - timedelta(seconds=45), monitor_error="NumericValueOutOfRangeError: x"
    )
    body = assess(failing, CFG)
    assert not body["ok"]
    assert (
        "no monitor tick succeeded for 45s; last error: NumericValueOutOfRangeError"
        in (body["checks"]["monitoring"]["reason"])
    )
    # A follower runs no monitor: nothing to judge there.
    assert assess(observed(leader=False, monitor_ok_at=None), CFG)["ok"]


def test_no_partitions_is_not_consuming() -> None:
    body = assess(observed(assigned_partitions=0), CFG)
    assert not body["ok"] and not body["consuming"]
