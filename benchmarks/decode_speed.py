"""CPU time per event of ``decode`` (pydantic, the reference; what ``sort_batch`` called per
message) against ``FastDecoder`` (msgspec; what it calls now), side by side in one run:
they alternate over the same messages in small blocks, so the machine's noise falls on
both alike, and the medians of the blocks are compared.

    python -m benchmarks.decode_speed [--events 2000] [--rounds 60]

Not a test and not part of ``make bench``: a quick check of the decode stage's budget.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from schemas.events import FeedbackGiven, OutcomeObserved, PredictionMade
from workers.ingest.decode import RawMessage, decode
from workers.ingest.fast_decode import FastDecoder
from workers.settings import ModelConfig, Settings

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SETTINGS = Settings(
    kafka_bootstrap="unused:9092",
    database_url="postgresql://unused/unused",
    models={"ctr": ModelConfig(task="regression", horizon_seconds=3600, no_outcome="drop")},
)
TOPICS = SETTINGS.topics


def predictions(n: int, rng: random.Random) -> list[RawMessage]:
    """As a Python producer sends them: 16 float features, microsecond times."""
    out = []
    for i in range(n):
        event = PredictionMade(
            event_id=uuid.UUID(int=rng.getrandbits(128)),
            prediction_id=f"run-{i}",
            model="ctr",
            model_version="v3",
            entity_id=f"user-{rng.randrange(50_000)}",
            features={f"f{j:02d}": round(rng.gauss(0, 10), 6) for j in range(16)},
            prediction=round(rng.random(), 6),
            predicted_at=NOW - timedelta(seconds=rng.uniform(1, 600)),
        )
        out.append(RawMessage(TOPICS.predictions, 0, i, None, event.to_bytes()))
    return out


def outcomes(n: int, rng: random.Random) -> list[RawMessage]:
    out = []
    for i in range(n):
        event = OutcomeObserved(
            prediction_id=f"run-{i}",
            outcome_kind="measured",
            value=round(rng.random(), 5),
            observed_at=NOW - timedelta(seconds=rng.uniform(1, 600)),
        )
        out.append(RawMessage(TOPICS.outcomes, 0, i, None, event.to_bytes()))
    return out


def feedback(n: int, rng: random.Random) -> list[RawMessage]:
    out = []
    for i in range(n):
        event = FeedbackGiven(
            prediction_id=f"run-{i}", label=1.0, given_at=NOW - timedelta(seconds=5)
        )
        out.append(RawMessage(TOPICS.feedback, 0, i, None, event.to_bytes()))
    return out


Decoder = Callable[[RawMessage], object]
BLOCK = 250


def per_event_us(decoder: Decoder, raws: Sequence[RawMessage]) -> float:
    start = time.process_time()
    for raw in raws:
        decoder(raw)
    return (time.process_time() - start) / len(raws) * 1e6


def reference(raw: RawMessage) -> object:
    return decode(raw, SETTINGS, NOW)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    rng = random.Random(7)
    cases = {
        "prediction, 16 float features": predictions(args.events, rng),
        "outcome": outcomes(args.events, rng),
        "feedback": feedback(args.events, rng),
    }
    print(f"{'message':32} {'decode µs':>10} {'fast µs':>9} {'speed-up':>9}  (median of rounds)")
    fast = FastDecoder(SETTINGS, NOW)
    for name, raws in cases.items():
        for decoder in (reference, fast):  # warm up both
            per_event_us(decoder, raws[:BLOCK])
        old, new = [], []
        for i in range(args.rounds):
            start = i * BLOCK % (len(raws) - BLOCK + 1)
            block = raws[start : start + BLOCK]
            old.append(per_event_us(reference, block))
            new.append(per_event_us(fast, block))
        o, n = statistics.median(old), statistics.median(new)
        print(f"{name:32} {o:10.2f} {n:9.2f} {o / n:8.1f}x")
    size = sum(len(r.value) for r in cases["prediction, 16 float features"]) / args.events
    print(f"(a prediction is {size:.0f} bytes of JSON; CPU time from time.process_time)")


if __name__ == "__main__":
    main()
