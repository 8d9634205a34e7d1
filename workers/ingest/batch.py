"""Sorting a batch of raw messages into valid events and dead letters. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from schemas.events import FeedbackGiven, IngestEvent, OutcomeObserved, PredictionMade
from workers.errors import RejectedInput
from workers.ingest.decode import RawMessage, decode
from workers.ingest.sql import DeadLetterRow
from workers.settings import Settings


def dead_letter(raw: RawMessage, reason: str, error_type: str) -> DeadLetterRow:
    # Offsets restart when the (memory-only) embedded broker restarts, so the payload hash
    # keeps two different messages at one offset apart.
    digest = hashlib.sha256(raw.value).hexdigest()[:16]
    return DeadLetterRow(
        dedupe_key=f"{raw.topic}:{raw.partition}:{raw.offset}:{digest}",
        topic=raw.topic,
        partition=raw.partition,
        offset=raw.offset,
        error_type=error_type,
        reason=reason,
        payload=raw.value,
        key=raw.key,
    )


@dataclass
class SortedBatch:
    predictions: list[PredictionMade] = field(default_factory=list)
    outcomes: list[OutcomeObserved] = field(default_factory=list)
    feedback: list[FeedbackGiven] = field(default_factory=list)
    dead: list[DeadLetterRow] = field(default_factory=list)
    # Where each valid event came from, to dead-letter it with its raw bytes if it later
    # proves impossible (an outcome long before its prediction).
    origin: dict[str, RawMessage] = field(default_factory=dict)

    def add(self, event: IngestEvent, raw: RawMessage) -> None:
        if isinstance(event, PredictionMade):
            self.predictions.append(event)
        elif isinstance(event, OutcomeObserved):
            self.outcomes.append(event)
        else:
            self.feedback.append(event)
        self.origin[str(event.event_id)] = raw

    @property
    def valid_count(self) -> int:
        return len(self.predictions) + len(self.outcomes) + len(self.feedback)


def sort_batch(raws: Iterable[RawMessage], settings: Settings, now: datetime) -> SortedBatch:
    batch = SortedBatch()
    for raw in raws:
        try:
            batch.add(decode(raw, settings, now), raw)
        except RejectedInput as exc:
            batch.dead.append(dead_letter(raw, exc.reason, exc.error_type))
    return batch
