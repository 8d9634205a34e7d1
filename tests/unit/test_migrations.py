from __future__ import annotations

from pathlib import Path

import pytest

from workers.db.migrate import discover
from workers.errors import MigrationError

REPO = Path(__file__).resolve().parents[2]


def test_repo_migrations_are_numbered_in_order() -> None:
    found = discover(REPO / "migrations")
    assert [m.version for m in found] == sorted(m.version for m in found)
    assert found[0].version == 1


def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "init.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNN_snake_name"):
        discover(tmp_path)


def test_duplicate_numbers_are_refused(tmp_path: Path) -> None:
    (tmp_path / "001_a.sql").write_text("SELECT 1;")
    (tmp_path / "001_b.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="duplicate"):
        discover(tmp_path)
