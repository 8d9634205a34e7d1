"""All SQL of the ingestion domain. Set-based: one statement per batch, never per event."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg
import msgspec

from schemas.events import FeedbackGiven, OutcomeObserved, PredictionMade
from workers.db.pool import Conn
from workers.settings import ModelConfig

# Serialises attribution and maturation across all workers, so the last writer always
# sees every committed outcome (see DESIGN.md, "State and guarantees").
MATURATION_LOCK = 7_301_002

# Batches arrive by COPY into per-connection staging tables (emptied at commit), then one
# INSERT ... SELECT with ON CONFLICT moves them: COPY does about twice the rows per second
# of an unnest insert, and the conflict handling keeps redelivery harmless. Features are
# staged as JSON text and cast once in PostgreSQL.
STAGE_PREDICTIONS = """
CREATE TEMP TABLE IF NOT EXISTS stage_predictions (
    prediction_id text, event_id uuid, model text, model_version text, entity_id text,
    features text, prediction float8, predicted_class text, predicted_at timestamptz,
    horizon_ends_at timestamptz
) ON COMMIT DELETE ROWS
"""

# A new prediction starts pending; maturation (below) moves it on.
INSERT_PREDICTIONS = """
WITH new AS (
    INSERT INTO predictions (prediction_id, event_id, model, model_version, entity_id, features,
                             prediction, predicted_class, predicted_at, horizon_ends_at)
    SELECT prediction_id, event_id, model, model_version, entity_id, features::jsonb,
           prediction, predicted_class, predicted_at, horizon_ends_at
    FROM stage_predictions
    ON CONFLICT DO NOTHING
    RETURNING prediction_id, model, predicted_at, horizon_ends_at
), pending AS (
    INSERT INTO pending_predictions (prediction_id, model, predicted_at, horizon_ends_at)
    SELECT * FROM new
)
SELECT prediction_id, model FROM new
"""

STAGE_OUTCOMES = """
CREATE TEMP TABLE IF NOT EXISTS stage_outcomes (
    event_id uuid, prediction_id text, entity_id text, model text, outcome_kind text,
    value float8, observed_at timestamptz
) ON COMMIT DELETE ROWS
"""

EXISTING_PREDICTION_EVENTS = """
SELECT prediction_id, event_id FROM predictions WHERE prediction_id = ANY($1::text[])
"""

INSERT_OUTCOMES = """
INSERT INTO outcomes (event_id, prediction_id, entity_id, model, outcome_kind, value, observed_at,
                      attributed_to)
SELECT event_id, prediction_id, entity_id, model, outcome_kind, value, observed_at, prediction_id
FROM stage_outcomes
ON CONFLICT (event_id) DO NOTHING
"""

INSERT_FEEDBACK = """
INSERT INTO feedback (event_id, prediction_id, label, source, given_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::float8[], $4::text[], $5::timestamptz[])
ON CONFLICT (event_id) DO NOTHING
"""

# Outcomes that carry only an entity are attributed to the latest prediction for that
# entity (and model, when named) made at or before the outcome, within its horizon.
# Re-evaluated when a new prediction could be a better match, so arrival order is moot.
ATTRIBUTE_ENTITY_OUTCOMES = """
WITH win AS (
    SELECT * FROM unnest($2::text[], $3::timestamptz[], $4::timestamptz[]) AS w(entity_id, t0, t1)
), touched AS (
    SELECT o.event_id FROM outcomes o
    WHERE o.event_id = ANY($1::uuid[]) AND o.prediction_id IS NULL
    UNION
    SELECT o.event_id FROM win
    JOIN outcomes o ON o.entity_id = win.entity_id AND o.prediction_id IS NULL
                   AND o.observed_at BETWEEN win.t0 AND win.t1
), pick AS (
    SELECT o.event_id, o.attributed_to AS old_pid, (
        SELECT p.prediction_id FROM predictions p
        WHERE p.entity_id = o.entity_id
          AND (o.model IS NULL OR p.model = o.model)
          AND p.predicted_at <= o.observed_at
          AND o.observed_at <= p.horizon_ends_at
        ORDER BY p.predicted_at DESC, p.prediction_id DESC
        LIMIT 1) AS new_pid
    FROM outcomes o JOIN touched USING (event_id)
    WHERE o.rejected_reason IS NULL
)
UPDATE outcomes o SET attributed_to = pick.new_pid
FROM pick
WHERE o.event_id = pick.event_id AND o.attributed_to IS DISTINCT FROM pick.new_pid
RETURNING pick.old_pid, pick.new_pid
"""

# Resolve the label of each candidate prediction from everything stored about it:
# the earliest attributed outcome within the horizon, the latest feedback, and the
# model's precedence and no-outcome policy. Inserting, relabelling and un-maturing
# are all the same recomputation, so replaying any event changes nothing.
# An outcome stamped more than $9 before the prediction it names cannot be its outcome:
# it is rejected here (rows returned, for the dead-letter topic) and never labels.
# Every candidate is checked, and the candidates include the predictions of the batch's
# outcomes and the batch's predictions, so it is caught whichever of the two came first.
# (Checked in the same statement as the labels, it costs one more key lookup per
# candidate: a statement of its own took a quarter of the time under the lock.) Only
# predictions of configured models are candidates: an outcome for one of a model since
# removed from the settings is neither checked nor ever used.
# The label skips an outcome too early under the current setting even when it was stored
# under a looser one; such an outcome is rejected the next time its prediction matures.
# Predictions are never updated (migration 013): the result goes to labeled_examples,
# pending_predictions or dropped_predictions, which only this statement changes (besides
# the new predictions INSERT_PREDICTIONS adds to pending_predictions), and it keeps each
# model's count of pending ones in pending_counts.
# Each write reaches its table by primary key, from arrays of the batch's ids ("key =
# ANY(ARRAY(...))"), so no plan can join a whole table against the batch.
MATURE = """
WITH cfg AS (
    SELECT * FROM unnest($1::text[], $2::bool[], $3::bool[], $4::float8[])
        AS c(model, feedback_wins, no_outcome_negative, no_outcome_label)
), cand AS (
    SELECT p.prediction_id, p.model, p.model_version, p.entity_id,
           p.features, p.prediction, p.predicted_class, p.predicted_at, p.horizon_ends_at,
           c.feedback_wins, c.no_outcome_negative, c.no_outcome_label,
           oc.value AS oc_value, oc.observed_at AS oc_at, oc.event_id AS oc_id,
           fb.label AS fb_label, fb.given_at AS fb_at, fb.event_id AS fb_id
    FROM predictions p
    JOIN cfg c ON c.model = p.model
    LEFT JOIN LATERAL (
        SELECT o.value, o.observed_at, o.event_id FROM outcomes o
        WHERE o.attributed_to = p.prediction_id AND o.rejected_reason IS NULL
          AND o.observed_at <= p.horizon_ends_at
          AND o.observed_at >= p.predicted_at - $9::interval  -- else impossible (below)
        ORDER BY o.observed_at, o.event_id
        LIMIT 1) oc ON true
    LEFT JOIN LATERAL (
        SELECT f.label, f.given_at, f.event_id FROM feedback f
        WHERE f.prediction_id = p.prediction_id
        ORDER BY f.given_at DESC, f.event_id
        LIMIT 1) fb ON true
    WHERE p.prediction_id = ANY($5::text[])
), resolved AS (
    SELECT cand.*,
        CASE WHEN fb_label IS NOT NULL AND (feedback_wins OR oc_value IS NULL) THEN 'feedback'
             WHEN oc_value IS NOT NULL THEN 'outcome'
             WHEN horizon_ends_at <= $6 AND no_outcome_negative THEN 'no_outcome'
             WHEN horizon_ends_at <= $6 THEN 'dropped'
        END AS resolution
    FROM cand
), impossible AS (
    -- OFFSET 0 keeps each lateral a lookup by key (see test_ingest_plans.py). An
    -- entity's outcome is attributed only to a prediction made before it.
    SELECT o.event_id, c.predicted_at
    FROM resolved c
    CROSS JOIN LATERAL (
        SELECT event_id FROM outcomes
        WHERE attributed_to = c.prediction_id AND prediction_id IS NOT NULL
          AND rejected_reason IS NULL AND observed_at < c.predicted_at - $9::interval
        OFFSET 0
    ) o
), rejected AS (
    UPDATE outcomes o
    SET rejected_reason = format(
            'outcome observed at %s, %s s before its prediction (made %s)',
            o.observed_at, round(extract(epoch FROM i.predicted_at - o.observed_at)),
            i.predicted_at),
        attributed_to = NULL
    FROM impossible i
    WHERE o.event_id = ANY(ARRAY(SELECT event_id FROM impossible))
      AND o.event_id = i.event_id
    RETURNING o.event_id, o.prediction_id, o.entity_id, o.model, o.outcome_kind, o.value,
              o.observed_at, o.rejected_reason
), labeled AS (
    SELECT r.*,
        CASE resolution WHEN 'feedback' THEN fb_label WHEN 'outcome' THEN oc_value
                        ELSE no_outcome_label END AS label,
        CASE resolution WHEN 'feedback' THEN fb_id WHEN 'outcome' THEN oc_id END AS label_event_id,
        CASE resolution WHEN 'feedback' THEN fb_at WHEN 'outcome' THEN oc_at END AS labeled_at
    FROM resolved r
    WHERE resolution IN ('feedback', 'outcome', 'no_outcome')
), upserted AS (
    INSERT INTO labeled_examples AS le (
        prediction_id, model, model_version, entity_id, features, prediction, predicted_class,
        label, label_source, label_event_id, predicted_at, labeled_at, matured_at)
    SELECT prediction_id, model, model_version, entity_id, features, prediction, predicted_class,
           label, resolution, label_event_id, predicted_at, labeled_at, $6
    FROM labeled
    ON CONFLICT (prediction_id) DO UPDATE
        SET label = EXCLUDED.label, label_source = EXCLUDED.label_source,
            label_event_id = EXCLUDED.label_event_id, labeled_at = EXCLUDED.labeled_at,
            updated_at = now()
        WHERE (le.label, le.label_source, le.label_event_id)
              IS DISTINCT FROM (EXCLUDED.label, EXCLUDED.label_source, EXCLUDED.label_event_id)
    RETURNING (xmax = 0) AS inserted
), unlabeled AS (
    DELETE FROM labeled_examples
    WHERE prediction_id = ANY(ARRAY(
        SELECT prediction_id FROM resolved
        WHERE resolution IS NULL OR resolution = 'dropped'))
    RETURNING prediction_id
), pended AS (
    -- Labeled ones whose label went away within their horizon (an entity's outcome that
    -- a later prediction took over): pending again. New ones are pending already.
    INSERT INTO pending_predictions (prediction_id, model, predicted_at, horizon_ends_at)
    SELECT r.prediction_id, r.model, r.predicted_at, r.horizon_ends_at
    FROM resolved r JOIN unlabeled u ON u.prediction_id = r.prediction_id
    WHERE r.resolution IS NULL
    ON CONFLICT (prediction_id) DO NOTHING
    RETURNING model
), unpended AS (
    DELETE FROM pending_predictions
    WHERE prediction_id = ANY(ARRAY(
        SELECT prediction_id FROM resolved WHERE resolution IS NOT NULL))
    RETURNING model
), counted AS (
    -- pending_counts follows every row in and out of pending_predictions: those moved
    -- here, and ($7, $8) those this transaction's INSERT_PREDICTIONS added.
    INSERT INTO pending_counts AS pc (model, n)
    SELECT model, sum(d) FROM (
        SELECT model, 1::bigint AS d FROM pended
        UNION ALL SELECT model, -1 FROM unpended
        UNION ALL SELECT * FROM unnest($7::text[], $8::bigint[])
    ) moved
    GROUP BY model HAVING sum(d) <> 0
    ON CONFLICT (model) DO UPDATE SET n = pc.n + EXCLUDED.n
), dropped AS (
    INSERT INTO dropped_predictions (prediction_id, model, predicted_at, dropped_at)
    SELECT prediction_id, model, predicted_at, $6 FROM resolved WHERE resolution = 'dropped'
    ON CONFLICT (prediction_id) DO NOTHING
    RETURNING prediction_id
), undropped AS (
    -- A dropped prediction that got a label after all (a late outcome or feedback).
    DELETE FROM dropped_predictions
    WHERE prediction_id = ANY(ARRAY(
        SELECT prediction_id FROM resolved WHERE resolution IS DISTINCT FROM 'dropped'))
)
-- The counts, on every row; one row per rejected outcome (or one of nulls).
SELECT n.*, r.*
FROM (SELECT
    (SELECT count(*) FROM upserted WHERE inserted) AS labeled,
    (SELECT count(*) FROM upserted WHERE NOT inserted) AS relabeled,
    (SELECT count(*) FROM unlabeled) AS unlabeled,
    (SELECT count(*) FROM dropped) AS dropped) n
LEFT JOIN rejected r ON true
"""

# Models whose kept pending count is not their number of rows: read in one snapshot, so
# a batch committed meanwhile moves both sides alike.
PENDING_DRIFT = """
SELECT model, kept.n AS kept, actual.n AS counted
FROM pending_counts kept
FULL JOIN (SELECT model, count(*) AS n FROM pending_predictions GROUP BY model) actual
    USING (model)
WHERE coalesce(kept.n, 0) <> coalesce(actual.n, 0)
ORDER BY model
"""

ADJUST_PENDING_COUNTS = """
INSERT INTO pending_counts AS pc (model, n)
SELECT * FROM unnest($1::text[], $2::bigint[])
ON CONFLICT (model) DO UPDATE SET n = pc.n + EXCLUDED.n
"""

EXPIRED_PENDING = """
SELECT prediction_id FROM pending_predictions
WHERE horizon_ends_at <= $2 AND model = ANY($1::text[])
ORDER BY horizon_ends_at
LIMIT $3
"""

INSERT_DEAD_LETTERS = """
INSERT INTO dead_letters (dedupe_key, source_topic, source_partition, source_offset, error_type,
                          reason, payload, message_key, original_bytes, payload_sha256)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[], $5::text[], $6::text[],
                     $7::bytea[], $8::bytea[], $9::bigint[], $10::text[])
ON CONFLICT (dedupe_key) DO NOTHING
"""

MARK_PUBLISHED = """
UPDATE dead_letters SET published_at = now()
WHERE dedupe_key = ANY($1::text[]) AND published_at IS NULL
"""

# Rows the broker refused MAX_PUBLISH_ATTEMPTS times stay in PostgreSQL (with the error)
# and are no longer offered: they cannot block the rows after them.
UNPUBLISHED = """
SELECT dedupe_key, source_topic, source_partition, source_offset, error_type, reason, payload,
       message_key, original_bytes, payload_sha256
FROM dead_letters
WHERE published_at IS NULL AND dead_lettered_at < now() - $1::interval AND publish_attempts < $3
ORDER BY id
LIMIT $2
"""

MARK_PUBLISH_FAILED = """
UPDATE dead_letters SET publish_attempts = publish_attempts + 1, publish_error = $2
WHERE dedupe_key = $1
"""

MAX_PUBLISH_ATTEMPTS = 5

COUNTS = """
SELECT
    (SELECT count(*) FROM predictions) AS predictions,
    (SELECT count(*) FROM pending_predictions) AS pending,
    (SELECT count(*) FROM outcomes) AS outcomes,
    (SELECT count(*) FROM feedback) AS feedback,
    (SELECT count(*) FROM labeled_examples) AS labeled,
    (SELECT count(*) FROM dropped_predictions) AS dropped,
    (SELECT count(*) FROM dead_letters) AS dead_letters
"""

# Progress of one synthetic run, whose prediction ids all start with the run's prefix.
RUN_COUNTS = """
SELECT
    count(*) AS predictions,
    count(*) FILTER (WHERE resolution IS NULL) AS pending,
    count(*) FILTER (WHERE resolution IN ('outcome', 'feedback', 'no_outcome')) AS labeled,
    count(*) FILTER (WHERE resolution = 'outcome') AS by_outcome,
    count(*) FILTER (WHERE resolution = 'feedback') AS by_feedback,
    count(*) FILTER (WHERE resolution = 'no_outcome') AS by_no_outcome,
    count(*) FILTER (WHERE resolution = 'dropped') AS dropped,
    (SELECT count(*) FROM outcomes
      WHERE coalesce(prediction_id, entity_id) LIKE $1 || '%') AS outcomes,
    (SELECT count(*) FROM feedback WHERE prediction_id LIKE $1 || '%') AS feedback,
    (SELECT count(*) FROM dead_letters WHERE dead_lettered_at >= $2) AS dead_letters
FROM prediction_status WHERE prediction_id LIKE $1 || '%'
"""

DEAD_LETTERS_SINCE = """
SELECT error_type, count(*) AS n, min(reason) AS example
FROM dead_letters WHERE dead_lettered_at >= $1
GROUP BY error_type ORDER BY n DESC
"""

# Error of one run's labeled examples, before and after the index where its data drifts.
RUN_QUALITY = """
SELECT model,
       (substring(prediction_id FROM length($1) + 2)::int >= $2) AS after_drift,
       count(*) AS n,
       avg(abs(prediction - label)) AS mae
FROM labeled_examples WHERE prediction_id LIKE $1 || '-%'
GROUP BY 1, 2 ORDER BY 1, 2
"""


# A demo run's examples after its drift point, by the version that scored them.
RUN_VERSION_QUALITY = """
SELECT model_version, count(*) AS n, avg(abs(prediction - label)) AS mae
FROM labeled_examples
WHERE prediction_id LIKE $1 || '-%' AND substring(prediction_id FROM length($1) + 2)::int >= $2
GROUP BY 1
"""

# How many of a run's examples in a time span were predicted after its drift point.
RUN_AFTER_DRIFT_SHARE = """
SELECT count(*) AS n,
       count(*) FILTER (WHERE substring(prediction_id FROM length($1) + 2)::int >= $2) AS after
FROM labeled_examples
WHERE prediction_id LIKE $1 || '-%' AND predicted_at BETWEEN $3 AND $4
"""


@dataclass(frozen=True)
class MatureCounts:
    labeled: int = 0
    relabeled: int = 0
    unlabeled: int = 0
    dropped: int = 0

    def __add__(self, other: MatureCounts) -> MatureCounts:
        return MatureCounts(
            self.labeled + other.labeled,
            self.relabeled + other.relabeled,
            self.unlabeled + other.unlabeled,
            self.dropped + other.dropped,
        )


@dataclass(frozen=True)
class DeadLetterRow:
    dedupe_key: str
    topic: str
    partition: int | None
    offset: int | None
    error_type: str
    reason: str
    payload: bytes  # the raw bytes, cut at limits.dead_letter_payload_bytes
    key: bytes | None
    original_bytes: int = 0  # the size of the message as it came
    sha256: str = ""  # of the whole original message

    @property
    def truncated(self) -> bool:
        return self.original_bytes > len(self.payload)


OUTCOME_COLUMNS = (
    "event_id",
    "prediction_id",
    "entity_id",
    "model",
    "outcome_kind",
    "value",
    "observed_at",
    "attributed_to",
)


async def insert_predictions(
    conn: Conn, events: Sequence[PredictionMade], horizons: Sequence[timedelta]
) -> dict[str, str]:
    """Insert new predictions (each starts pending); return the model of each one that
    was actually new, by id. In a transaction."""
    assert conn.is_in_transaction(), "staged rows are emptied at commit"
    records = [
        (
            e.prediction_id,
            e.event_id,
            e.model,
            e.model_version,
            e.entity_id,
            _json(e.features),
            e.prediction,
            e.predicted_class,
            e.predicted_at,
            e.predicted_at + h,
        )
        for e, h in zip(events, horizons, strict=True)
    ]
    await conn.execute(STAGE_PREDICTIONS)
    await conn.copy_records_to_table("stage_predictions", records=records)
    rows = await conn.fetch(INSERT_PREDICTIONS)
    return {r["prediction_id"]: r["model"] for r in rows}


_encode_json = msgspec.json.Encoder().encode


def _json(value: object) -> str:
    return _encode_json(value).decode()


async def prediction_event_ids(conn: Conn, prediction_ids: Sequence[str]) -> dict[str, UUID]:
    rows = await conn.fetch(EXISTING_PREDICTION_EVENTS, list(prediction_ids))
    return {r["prediction_id"]: r["event_id"] for r in rows}


async def insert_outcomes(
    conn: Conn, events: Sequence[OutcomeObserved], *, direct: bool = False
) -> None:
    """In a transaction. An outcome naming its prediction is attributed to it; one naming
    only an entity is attributed later.

    ``direct``: COPY straight into outcomes, for a batch whose outcomes are all new, the
    common case (a quarter less time than staging them: 7 against 10 ms for 1,000). A
    stored event_id then fails the COPY with UniqueViolationError, which aborts the
    transaction, and the caller runs the batch again staged: the rows are moved with ON
    CONFLICT, which keeps a redelivered batch harmless. (A savepoint around the COPY
    would spare the rerun but cost more than the COPY saves. Predictions are always
    staged: a direct COPY of their jsonb features measured no faster.)"""
    assert conn.is_in_transaction(), "staged rows are emptied at commit"
    records = [
        (
            e.event_id,
            e.prediction_id,
            e.entity_id,
            e.model,
            e.outcome_kind,
            e.value,
            e.observed_at,
            e.prediction_id,
        )
        for e in events
    ]
    if direct:
        await conn.copy_records_to_table("outcomes", records=records, columns=OUTCOME_COLUMNS)
        return
    await conn.execute(STAGE_OUTCOMES)
    await conn.copy_records_to_table("stage_outcomes", records=[r[:-1] for r in records])
    await conn.execute(INSERT_OUTCOMES)


async def insert_feedback(conn: Conn, events: Sequence[FeedbackGiven]) -> None:
    await conn.execute(
        INSERT_FEEDBACK,
        [e.event_id for e in events],
        [e.prediction_id for e in events],
        [e.label for e in events],
        [e.source for e in events],
        [e.given_at for e in events],
    )


async def lock_maturation(conn: Conn) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock($1)", MATURATION_LOCK)


async def attribute_entity_outcomes(
    conn: Conn,
    outcome_ids: Sequence[UUID],
    windows: Sequence[tuple[str, datetime, datetime]],
) -> set[str]:
    """(Re)attribute entity outcomes; return every prediction whose outcomes changed."""
    if not outcome_ids and not windows:
        # Nothing here can touch an entity outcome (a stream joined by prediction id):
        # no round trip, and no plan to go wrong (one cost 2 s over a 150k backlog).
        return set()
    rows = await conn.fetch(
        ATTRIBUTE_ENTITY_OUTCOMES,
        list(outcome_ids),
        [w[0] for w in windows],
        [w[1] for w in windows],
        [w[2] for w in windows],
    )
    return {pid for r in rows for pid in (r["old_pid"], r["new_pid"]) if pid is not None}


async def mature(
    conn: Conn,
    models: dict[str, ModelConfig],
    prediction_ids: Sequence[str],
    now: datetime,
    tolerance: timedelta,
    added: Mapping[str, int] | None = None,
) -> tuple[MatureCounts, list[asyncpg.Record]]:
    """Mature the candidates; return the counts and the outcomes rejected as stamped more
    than ``tolerance`` before their prediction (for the dead-letter topic).

    ``added``: how many pending rows this transaction's insert_predictions made, by
    model, for pending_counts (maturation keeps it, under the maturation lock)."""
    added = added or {}
    if not prediction_ids:
        assert not added, "new pending predictions are always candidates"
        return MatureCounts(), []
    names = sorted(models)
    rows = await conn.fetch(
        MATURE,
        names,
        [models[n].feedback_wins for n in names],
        [models[n].no_outcome == "negative" for n in names],
        [models[n].no_outcome_label for n in names],
        list(prediction_ids),
        now,
        list(added),
        list(added.values()),
        tolerance,
    )
    n = rows[0]
    counts = MatureCounts(n["labeled"], n["relabeled"], n["unlabeled"], n["dropped"])
    return counts, [r for r in rows if r["event_id"] is not None]


async def pending_drift(conn: Conn) -> dict[str, int]:
    """Rows minus kept count, for each model where they differ."""
    return {
        r["model"]: (r["counted"] or 0) - (r["kept"] or 0) for r in await conn.fetch(PENDING_DRIFT)
    }


async def adjust_pending_counts(conn: Conn, deltas: Mapping[str, int]) -> None:
    await conn.execute(ADJUST_PENDING_COUNTS, list(deltas), list(deltas.values()))


async def expired_pending(
    conn: Conn, models: Sequence[str], now: datetime, limit: int
) -> list[str]:
    rows = await conn.fetch(EXPIRED_PENDING, list(models), now, limit)
    return [r["prediction_id"] for r in rows]


async def insert_dead_letters(conn: Conn, rows: Sequence[DeadLetterRow]) -> None:
    if not rows:
        return
    await conn.execute(
        INSERT_DEAD_LETTERS,
        [r.dedupe_key for r in rows],
        [r.topic for r in rows],
        [r.partition for r in rows],
        [r.offset for r in rows],
        [r.error_type for r in rows],
        [r.reason for r in rows],
        [r.payload for r in rows],
        [r.key for r in rows],
        [r.original_bytes or len(r.payload) for r in rows],
        [r.sha256 or None for r in rows],
    )


async def mark_publish_failed(conn: Conn, key: str, error: str) -> None:
    await conn.execute(MARK_PUBLISH_FAILED, key, error[:500])


async def mark_published(conn: Conn, keys: Sequence[str]) -> None:
    if keys:
        await conn.execute(MARK_PUBLISHED, list(keys))


async def unpublished(conn: Conn, grace: timedelta, limit: int) -> list[DeadLetterRow]:
    return [
        DeadLetterRow(
            r["dedupe_key"],
            r["source_topic"],
            r["source_partition"],
            r["source_offset"],
            r["error_type"],
            r["reason"],
            bytes(r["payload"]),
            bytes(r["message_key"]) if r["message_key"] is not None else None,
            r["original_bytes"] or len(r["payload"]),
            r["payload_sha256"] or "",
        )
        for r in await conn.fetch(UNPUBLISHED, grace, limit, MAX_PUBLISH_ATTEMPTS)
    ]


async def counts(conn: Conn) -> dict[str, int]:
    row = await conn.fetchrow(COUNTS)
    assert row is not None
    return dict(row)


async def run_quality(conn: Conn, prefix: str, drift_index: int) -> list[asyncpg.Record]:
    return await conn.fetch(RUN_QUALITY, prefix, drift_index)


async def run_version_quality(conn: Conn, prefix: str, drift_index: int) -> list[asyncpg.Record]:
    return await conn.fetch(RUN_VERSION_QUALITY, prefix, drift_index)


async def run_after_drift_share(
    conn: Conn, prefix: str, drift_index: int, start: datetime, end: datetime
) -> tuple[int, int]:
    row = await conn.fetchrow(RUN_AFTER_DRIFT_SHARE, prefix, drift_index, start, end)
    assert row is not None
    return int(row["n"]), int(row["after"])


async def run_counts(conn: Conn, prefix: str, since: datetime) -> dict[str, int]:
    row = await conn.fetchrow(RUN_COUNTS, prefix, since)
    assert row is not None
    return dict(row)


async def dead_letters_since(conn: Conn, since: datetime) -> list[asyncpg.Record]:
    return await conn.fetch(DEAD_LETTERS_SINCE, since)
