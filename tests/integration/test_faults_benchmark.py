"""The fault-survival benchmark (`make faults`) in small: hostile messages and SIGKILLs
through real workers on the session's broker and PostgreSQL, read back like the full run."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.faults import Fault, run_fault
from tests.conftest import SettingsFactory

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("fault", "kills"), [("hostile", 0), ("sigkill", 2)])
async def test_a_fault_loses_and_doubles_nothing(
    make_settings: SettingsFactory, tmp_path: Path, fault: Fault, kills: int
) -> None:
    # run_fault makes its own database, app id and topics on the session's servers.
    result = await run_fault(
        make_settings(), fault, events=600, rate=300.0, log_dir=tmp_path, kills=kills, timeout=60
    )
    detail = f"{result.notes}\n{result.problems}\nlogs: {result.logs}"
    assert result.error is None, detail
    assert result.sent == result.distinct > 500
    assert result.lost == result.doubled == result.wrong == 0, detail
    assert result.matured == result.expected_examples > 0, detail
    assert result.dead_ok, (result.dead_expected, result.dead_actual)
    assert sum(result.dead_expected.values()) == (18 if fault == "hostile" else 0)
    assert result.kept_going, detail
    assert len(result.logs) == 1 + kills
