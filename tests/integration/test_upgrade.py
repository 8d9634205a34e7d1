"""Upgrading a database that already holds data: each prediction keeps its state."""

from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import REPO, Infra, empty_database
from workers.db.migrate import migrate

pytestmark = pytest.mark.integration

# Three predictions as the schema before migration 013 kept them: one pending, one
# labeled by its outcome, one dropped at its horizon.
OLD_ROWS = """
INSERT INTO predictions (prediction_id, event_id, model, model_version, features, prediction,
                         predicted_at, horizon_ends_at, resolution, matured_at)
VALUES ('waiting', gen_random_uuid(), 'ctr', 'v1', '{}', 0.1,
        '2026-11-20 10:00+00', '2026-11-20 11:00+00', NULL, NULL),
       ('labeled', gen_random_uuid(), 'ctr', 'v1', '{}', 0.1,
        '2026-11-20 10:00+00', '2026-11-20 11:00+00', 'outcome', '2026-11-20 10:05+00'),
       ('dropped', gen_random_uuid(), 'ctr', 'v1', '{}', 0.1,
        '2026-11-20 09:00+00', '2026-11-20 10:00+00', 'dropped', '2026-11-20 10:01+00');
INSERT INTO labeled_examples (prediction_id, model, model_version, features, prediction, label,
                              label_source, predicted_at, matured_at)
VALUES ('labeled', 'ctr', 'v1', '{}', 0.1, 0.2, 'outcome', '2026-11-20 10:00+00',
        '2026-11-20 10:05+00');
"""


async def test_migration_013_keeps_each_predictions_state(infra: Infra, tmp_path: Path) -> None:
    before = tmp_path / "migrations"
    before.mkdir()
    for path in sorted((REPO / "migrations").glob("*.sql")):
        if int(path.name[:3]) < 13:
            shutil.copy(path, before / path.name)
    conn = await asyncpg.connect(await empty_database(infra, "up_"))
    try:
        await migrate(conn, before)
        await conn.execute(OLD_ROWS)
        applied = await migrate(conn, REPO / "migrations")
        rows = await conn.fetch(
            "SELECT prediction_id, resolution, matured_at::text FROM prediction_status ORDER BY 1"
        )
        pending = await conn.fetch(
            "SELECT prediction_id, horizon_ends_at::text FROM pending_predictions"
        )
        dropped = await conn.fetch(
            "SELECT prediction_id, dropped_at::text FROM dropped_predictions"
        )
        counted = await conn.fetch("SELECT model, n FROM pending_counts")  # migration 014
    finally:
        await conn.close()
    assert 13 in [m.version for m in applied]
    assert [tuple(r) for r in rows] == [
        ("dropped", "dropped", "2026-11-20 10:01:00+00"),
        ("labeled", "outcome", "2026-11-20 10:05:00+00"),
        ("waiting", None, None),
    ]
    assert [tuple(r) for r in pending] == [("waiting", "2026-11-20 11:00:00+00")]
    assert [tuple(r) for r in dropped] == [("dropped", "2026-11-20 10:01:00+00")]
    assert [tuple(r) for r in counted] == [("ctr", 1)]
