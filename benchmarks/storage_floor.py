"""The storage floor of `make bench` part 1: what any consumer pays, at the least, to keep
the backlog's events in the worker's own tables.

Each ``getmany`` batch is parsed with msgspec into plain rows (no contract, no checks) and
copied with one binary COPY per table into ``predictions`` and ``outcomes`` (their keys
and indexes as migrated), in one transaction. No validation, no join, no maturation, no
``labeled_examples``: the worker does all of that on top, so its rate cannot exceed this
one on the same machine, and the naive agent's multiple of it bounds the worker's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec

from workers.db.pool import Conn
from workers.ingest import sql as ingest_sql

PREDICTION_COLUMNS = (
    "prediction_id",
    "event_id",
    "model",
    "model_version",
    "entity_id",
    "features",
    "prediction",
    "predicted_class",
    "predicted_at",
    "horizon_ends_at",
)
# The columns the worker itself COPYs outcomes into.
OUTCOME_COLUMNS = ingest_sql.OUTCOME_COLUMNS


def prediction_row(value: bytes, horizon: timedelta) -> tuple[Any, ...]:
    e = msgspec.json.decode(value)
    at = datetime.fromisoformat(e["predicted_at"])
    return (
        e["prediction_id"],
        UUID(e["event_id"]),
        e["model"],
        e["model_version"],
        e.get("entity_id"),
        msgspec.json.encode(e["features"]).decode(),
        float(e["prediction"]),
        e.get("predicted_class"),
        at,
        at + horizon,
    )


def outcome_row(value: bytes) -> tuple[Any, ...]:
    e = msgspec.json.decode(value)
    return (
        UUID(e["event_id"]),
        e.get("prediction_id"),
        e.get("entity_id"),
        e.get("model"),
        e["outcome_kind"],
        float(e["value"]),
        datetime.fromisoformat(e["observed_at"]),
        e.get("prediction_id"),
    )


async def store(
    conn: Conn,
    batches: Mapping[Any, Sequence[Any]],
    predictions_topic: str,
    horizon: timedelta,
) -> None:
    """One ``getmany`` result into the tables, in one transaction."""
    predictions: list[tuple[Any, ...]] = []
    outcomes: list[tuple[Any, ...]] = []
    for tp, messages in batches.items():
        if tp.topic == predictions_topic:
            predictions += [prediction_row(m.value, horizon) for m in messages]
        else:
            outcomes += [outcome_row(m.value) for m in messages]
    async with conn.transaction():
        if predictions:
            await conn.copy_records_to_table(
                "predictions", records=predictions, columns=PREDICTION_COLUMNS
            )
        if outcomes:
            await conn.copy_records_to_table("outcomes", records=outcomes, columns=OUTCOME_COLUMNS)
