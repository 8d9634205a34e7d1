"""The ingest pipeline behind the agent: sort, persist, mature, dead-letter.

Kept free of Faust so it runs the same in the worker and in tests against a real
PostgreSQL. Every step is idempotent, so a redelivered batch changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import asyncpg

from schemas.base import utc_now
from schemas.events import OutcomeObserved
from workers import metrics
from workers.db.pool import Conn
from workers.ingest import sql
from workers.ingest.batch import BatchSorter, SortedBatch, dead_letter
from workers.ingest.decode import RawMessage
from workers.ingest.sql import DeadLetterRow, MatureCounts
from workers.settings import Settings

log = logging.getLogger(__name__)

# PostgreSQL refused the data itself (bad encoding, out of range...): retrying the same
# rows cannot help, so the batch is split until the offending message is isolated.
DATA_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
# Messages decoded between two yields to the event loop (about 5 ms of work).
DECODE_CHUNK = 250


class DeadLetterSink(Protocol):
    async def publish(self, rows: Sequence[DeadLetterRow]) -> list[BaseException | None]:
        """Publish each row; one result per row (None: the broker has it)."""
        ...


@dataclass
class BatchResult:
    consumed: int = 0
    valid: int = 0
    matured: MatureCounts = field(default_factory=MatureCounts)
    dead: list[DeadLetterRow] = field(default_factory=list)

    def merge(self, other: BatchResult) -> None:
        self.consumed += other.consumed
        self.valid += other.valid
        self.matured += other.matured
        self.dead.extend(other.dead)


async def publish_dead_letters(
    sink: DeadLetterSink, pool: asyncpg.Pool, rows: Sequence[DeadLetterRow]
) -> int:
    """Publish stored dead letters; mark each published, or failed with its error (after
    a few failures the outbox stops offering it). With the broker unreachable nothing is
    marked: the outbox tries again later. Returns how many went out."""
    try:
        results = await sink.publish(rows)
    except Exception as exc:
        log.warning("dead letters not published yet (%s); the outbox will retry", exc)
        return 0
    sent = [r.dedupe_key for r, err in zip(rows, results, strict=True) if err is None]
    failed = [(r, err) for r, err in zip(rows, results, strict=True) if err is not None]
    async with pool.acquire() as conn:
        await sql.mark_published(conn, sent)
        for row, err in failed:
            await sql.mark_publish_failed(conn, row.dedupe_key, f"{type(err).__name__}: {err}")
    for row, err in failed:
        log.error(
            "dead letter %s could not be published (%s: %s); it stays in PostgreSQL",
            row.dedupe_key,
            type(err).__name__,
            str(err)[:200],
        )
    return len(sent)


class IngestService:
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        sink: DeadLetterSink,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.sink = sink
        self.clock = clock
        # One timedelta per model, not one per prediction (2% of a drain's ingest CPU).
        self._horizons = {
            name: timedelta(seconds=cfg.horizon_seconds) for name, cfg in settings.models.items()
        }
        self._tolerance = timedelta(seconds=settings.time.max_outcome_before_prediction_seconds)

    async def handle(self, raws: Sequence[RawMessage]) -> BatchResult:
        """Process one batch; return only once everything in it is durable."""
        result = await self._handle_isolating_bad_rows(list(raws))
        await self.publish_dead(result.dead)
        for topic, n in Counter(raw.topic for raw in raws).items():
            metrics.EVENTS_IN.labels(topic).inc(n)
        m = result.matured
        metrics.MATURED.labels("labeled").inc(m.labeled)
        metrics.MATURED.labels("relabeled").inc(m.relabeled)
        return result

    async def _sorted(self, raws: list[RawMessage]) -> SortedBatch:
        """sort_batch, yielding to the event loop every DECODE_CHUNK messages: with two
        batches in flight, the other one's statements go out between the parts instead of
        waiting for the whole batch to be decoded."""
        sorter = BatchSorter(self.settings, self.clock())
        for start in range(0, len(raws), DECODE_CHUNK):
            if start:
                await asyncio.sleep(0)
            sorter.add(raws[start : start + DECODE_CHUNK])
        return sorter.batch

    async def _handle_isolating_bad_rows(self, raws: list[RawMessage]) -> BatchResult:
        try:
            return await self._persist(await self._sorted(raws), len(raws))
        except DATA_ERRORS as exc:
            if len(raws) == 1:
                reason = f"PostgreSQL refused the event: {exc.__class__.__name__}: {exc}"
                row = dead_letter(raws[0], reason, "unstorable", self.settings.limits)
                async with self.pool.acquire() as conn:
                    await sql.insert_dead_letters(conn, [row])
                return BatchResult(consumed=1, dead=[row])
            log.warning("batch of %d refused by PostgreSQL (%s); splitting", len(raws), exc)
            mid = len(raws) // 2
            result = await self._handle_isolating_bad_rows(raws[:mid])
            result.merge(await self._handle_isolating_bad_rows(raws[mid:]))
            return result

    async def _persist(self, batch: SortedBatch, consumed: int) -> BatchResult:
        try:
            return await self._persist_once(batch, consumed, direct=True)
        except asyncpg.UniqueViolationError:
            # An outcome is stored already (a redelivered batch): again, with the rows
            # staged and merged (see sql.insert_outcomes).
            return await self._persist_once(batch, consumed, direct=False)

    async def _persist_once(
        self, batch: SortedBatch, consumed: int, *, direct: bool
    ) -> BatchResult:
        models = self.settings.models
        horizon = self._horizons
        dead = list(batch.dead)
        async with self.pool.acquire() as conn, conn.transaction():
            predictions = batch.predictions
            new: dict[str, str] = {}  # model by id, of the predictions stored just now
            if predictions:
                horizons = [horizon[p.model] for p in predictions]
                new = await sql.insert_predictions(conn, predictions, horizons)
                dead.extend(await self._conflicting_duplicates(conn, batch, new))
            if batch.outcomes:
                await sql.insert_outcomes(conn, batch.outcomes, direct=direct)
            if batch.feedback:
                await sql.insert_feedback(conn, batch.feedback)

            await sql.lock_maturation(conn)
            # Read the clock only once holding the lock: a batch that waited for the sweep
            # must not judge horizons by an earlier time than the sweep did.
            now = self.clock()
            prediction_ids = [p.prediction_id for p in predictions]
            changed = await sql.attribute_entity_outcomes(
                conn,
                [o.event_id for o in batch.outcomes if o.prediction_id is None],
                [
                    (p.entity_id, p.predicted_at, p.predicted_at + h)
                    for p, h in zip(predictions, horizons, strict=True)
                    if p.entity_id is not None
                ]
                if predictions
                else [],
            )
            candidates = set(prediction_ids) | changed
            candidates |= {o.prediction_id for o in batch.outcomes if o.prediction_id}
            candidates |= {f.prediction_id for f in batch.feedback}
            matured, rejected = await sql.mature(
                conn, models, sorted(candidates), now, self._tolerance, Counter(new.values())
            )
            dead.extend(self._rejected_outcome_letters(batch.origin, rejected))
            await sql.insert_dead_letters(conn, dead)
        return BatchResult(consumed=consumed, valid=batch.valid_count, matured=matured, dead=dead)

    async def _conflicting_duplicates(
        self, conn: Conn, batch: SortedBatch, new_ids: Mapping[str, str]
    ) -> list[DeadLetterRow]:
        """A prediction_id seen before is a redelivery if its event_id matches, else a conflict."""
        seen: set[str] = set()
        doubled: set[str] = set()
        for p in batch.predictions:
            (doubled if p.prediction_id in seen else seen).add(p.prediction_id)
        suspects = [
            p
            for p in batch.predictions
            if p.prediction_id not in new_ids or p.prediction_id in doubled
        ]
        if not suspects:
            return []
        stored = await sql.prediction_event_ids(conn, [p.prediction_id for p in suspects])
        return [
            dead_letter(
                batch.origin[str(p.event_id)],
                f"prediction_id {p.prediction_id!r} is already used by event "
                f"{stored.get(p.prediction_id)}; prediction ids must be unique",
                "conflicting_duplicate",
                self.settings.limits,
            )
            for p in suspects
            if stored.get(p.prediction_id) != p.event_id
        ]

    def _rejected_outcome_letters(
        self, origin: Mapping[str, RawMessage], rows: Sequence[asyncpg.Record]
    ) -> list[DeadLetterRow]:
        """Dead letters for outcomes maturation rejected, with their bytes as consumed
        (``origin``, by event id) or, stored earlier, rebuilt."""
        letters = []
        for r in rows:
            raw = origin.get(str(r["event_id"]))
            if raw is None:
                # Stored in an earlier batch; its prediction arrived now. Rebuild its bytes.
                event = OutcomeObserved(
                    event_id=r["event_id"],
                    prediction_id=r["prediction_id"],
                    entity_id=r["entity_id"],
                    model=r["model"],
                    outcome_kind=r["outcome_kind"],
                    value=r["value"],
                    observed_at=r["observed_at"],
                )
                raw = RawMessage(self.settings.topics.outcomes, -1, -1, None, event.to_bytes())
            letters.append(
                dead_letter(raw, r["rejected_reason"], "impossible_time", self.settings.limits)
            )
        return letters

    async def publish_dead(self, rows: Sequence[DeadLetterRow]) -> None:
        """Publish dead letters already stored, then record which went out. One the broker
        refuses is marked with why and left to the outbox; it never holds a batch (its
        message is safe in PostgreSQL, so the offset may move on). Counts each in the
        dead-letter metric."""
        if not rows:
            return
        for row in rows:
            metrics.DEAD_LETTERS.labels(row.topic, row.error_type).inc()
        await publish_dead_letters(self.sink, self.pool, rows)

    async def republish(self, *, grace: timedelta = timedelta(seconds=30)) -> int:
        """Publish dead letters whose publishing never finished (a crash, a broker
        outage); the grace keeps clear of batches still publishing their own."""
        async with self.pool.acquire() as conn:
            rows = await sql.unpublished(conn, grace, 500)
        return await publish_dead_letters(self.sink, self.pool, rows) if rows else 0

    async def recount_pending(self) -> dict[str, int]:
        """Correct pending_counts where it strayed from pending_predictions (rows moved by
        a worker that does not keep the counts: an older version during an upgrade).
        Returns the corrections by model. The scan runs outside the maturation lock; the
        correction is a delta, applied under it."""
        async with self.pool.acquire() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                drift = await sql.pending_drift(conn)
            if drift:
                async with conn.transaction():
                    await sql.lock_maturation(conn)
                    await sql.adjust_pending_counts(conn, drift)
        return drift

    async def sweep(self) -> MatureCounts:
        """Mature predictions whose horizon has passed; run by the leader on a timer."""
        total = MatureCounts()
        dead: list[DeadLetterRow] = []
        limit = self.settings.worker.sweep_batch
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                await sql.lock_maturation(conn)
                now = self.clock()  # after the lock: lock holders see time move forward
                ids = await sql.expired_pending(conn, sorted(self.settings.models), now, limit)
                if not ids:
                    break
                done, rejected = await sql.mature(
                    conn, self.settings.models, ids, now, self._tolerance
                )
                # Impossible outcomes are caught as their batch matures; one shows up
                # here only if max_outcome_before_prediction_seconds was lowered since, or
                # its model was configured again.
                letters = self._rejected_outcome_letters({}, rejected)
                await sql.insert_dead_letters(conn, letters)
                dead += letters
                total += done
            if len(ids) < limit or done == MatureCounts():
                break
        await self.publish_dead(dead)
        metrics.MATURED.labels("horizon").inc(total.labeled)
        return total
