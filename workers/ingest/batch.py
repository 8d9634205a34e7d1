"""Sorting a batch of raw messages into valid events and dead letters. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from schemas.events import FeedbackGiven, IngestEvent, OutcomeObserved, PredictionMade
from workers.errors import RejectedInput
from workers.ingest.decode import RawMessage
from workers.ingest.fast_decode import FastDecoder
from workers.ingest.sql import DeadLetterRow
from workers.settings import LimitsConfig, Settings


def dead_letter(
    raw: RawMessage, reason: str, error_type: str, limits: LimitsConfig
) -> DeadLetterRow:
    """A dead letter that always fits on the dead-letter topic: the raw bytes up to
    ``dead_letter_payload_bytes`` (the original's size and sha256 say what was cut), the
    key likewise, and a reason of at most ``reason_chars`` on one line."""
    digest = hashlib.sha256(raw.value).hexdigest()
    keep = limits.dead_letter_payload_bytes
    return DeadLetterRow(
        # Offsets restart when the (memory-only) embedded broker restarts, so the payload
        # hash keeps two different messages at one offset apart.
        dedupe_key=f"{raw.topic}:{raw.partition}:{raw.offset}:{digest[:16]}",
        topic=raw.topic,
        partition=raw.partition,
        offset=raw.offset,
        error_type=error_type,
        reason=one_line(reason, limits.reason_chars),
        payload=raw.value[:keep],
        key=raw.key[:1024] if raw.key is not None else None,
        original_bytes=len(raw.value),
        sha256=digest,
    )


def one_line(text: str, limit: int) -> str:
    """Text from producers or operators, safe for a header or a log line: control
    characters escaped, at most ``limit`` characters."""
    if text.isprintable() and len(text) <= limit:
        return text
    escaped = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[: limit + 1])
    return escaped if len(escaped) <= limit else escaped[: limit - 1] + "…"


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


class BatchSorter:
    """Sorts a batch in parts (``add``), so the caller may let other work run between
    them; ``sort_batch`` does it in one go."""

    __slots__ = ("_decode", "_limits", "batch")

    def __init__(self, settings: Settings, now: datetime) -> None:
        # The fast decoder gives decode's verdicts (tests/unit/test_decode_parity.py); its
        # checks are worked out once for the batch.
        self._decode = FastDecoder(settings, now)
        self._limits = settings.limits
        self.batch = SortedBatch()

    def add(self, raws: Iterable[RawMessage]) -> None:
        batch, decode_one = self.batch, self._decode
        for raw in raws:
            try:
                batch.add(decode_one(raw), raw)
            except RejectedInput as exc:
                batch.dead.append(dead_letter(raw, exc.reason, exc.error_type, self._limits))


def sort_batch(raws: Iterable[RawMessage], settings: Settings, now: datetime) -> SortedBatch:
    sorter = BatchSorter(settings, now)
    sorter.add(raws)
    return sorter.batch
