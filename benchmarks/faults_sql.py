"""What the fault-survival benchmark reads back from PostgreSQL.

Each scenario has a database of its own, so no query needs scoping to a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from workers.db.pool import Conn

PROGRESS = """
SELECT (SELECT count(*) FROM predictions) AS predictions,
       (SELECT count(*) FROM pending_predictions) AS pending,
       (SELECT count(*) FROM outcomes) AS outcomes,
       (SELECT count(*) FROM labeled_examples) AS labeled,
       (SELECT count(*) FROM dead_letters) AS dead_letters
"""

STORED = "SELECT (SELECT count(*) FROM predictions) + (SELECT count(*) FROM outcomes)"

PREDICTIONS = "SELECT prediction_id, event_id, resolution FROM prediction_status"

OUTCOMES = "SELECT event_id, prediction_id, rejected_reason FROM outcomes"

LABELED = "SELECT prediction_id, label, label_source, label_event_id FROM labeled_examples"

# Keys make these 0 by construction; counted anyway, since a doubled row is what the
# benchmark exists to catch.
REPEATED_KEYS = """
SELECT (SELECT count(*) - count(DISTINCT event_id) FROM predictions)
     + (SELECT count(*) - count(DISTINCT prediction_id) FROM predictions)
     + (SELECT count(*) - count(DISTINCT event_id) FROM outcomes)
     + (SELECT count(*) - count(DISTINCT prediction_id) FROM labeled_examples)
"""

DEAD_LETTERS = """
SELECT error_type, count(*) AS n, count(published_at) AS published
FROM dead_letters GROUP BY error_type ORDER BY error_type
"""


@dataclass(frozen=True)
class Progress:
    predictions: int
    pending: int
    outcomes: int
    labeled: int
    dead_letters: int


@dataclass(frozen=True)
class Labeled:
    label: float
    source: str
    event_id: UUID | None


@dataclass(frozen=True)
class ReadBack:
    predictions: dict[str, tuple[UUID, str | None]]  # prediction_id -> (event_id, resolution)
    outcomes: dict[UUID, str | None]  # event_id -> rejected_reason
    labeled: dict[str, Labeled]
    repeated_keys: int
    dead_letters: dict[str, tuple[int, int]]  # error_type -> (stored, published)


async def progress(conn: Conn) -> Progress:
    row = await conn.fetchrow(PROGRESS)
    assert row is not None
    return Progress(**{k: int(v) for k, v in dict(row).items()})


async def stored(conn: Conn) -> int:
    return int(await conn.fetchval(STORED))


async def read_back(conn: Conn) -> ReadBack:
    return ReadBack(
        predictions={
            r["prediction_id"]: (r["event_id"], r["resolution"])
            for r in await conn.fetch(PREDICTIONS)
        },
        outcomes={r["event_id"]: r["rejected_reason"] for r in await conn.fetch(OUTCOMES)},
        labeled={
            r["prediction_id"]: Labeled(float(r["label"]), r["label_source"], r["label_event_id"])
            for r in await conn.fetch(LABELED)
        },
        repeated_keys=int(await conn.fetchval(REPEATED_KEYS)),
        dead_letters={
            r["error_type"]: (int(r["n"]), int(r["published"]))
            for r in await conn.fetch(DEAD_LETTERS)
        },
    )
