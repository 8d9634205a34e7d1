"""Realistic event streams for a named scenario. Pure: builds a send schedule, sends nothing.

Each scenario has a data generator whose relationship shifts at ``drift_at`` (a share of
the stream), a simple scikit-learn model fitted on pre-drift data that scores every
prediction, outcomes that arrive after random delays (some before their prediction is
delivered, some never), a little human feedback and a sprinkle of malformed messages.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression

from schemas import FeedbackGiven, Message, OutcomeObserved, PredictionMade
from schemas.base import FeatureValue
from workers.synth.spec import SCENARIOS, ScenarioSpec

Kind = Literal["prediction", "outcome", "feedback"]


@dataclass(frozen=True, slots=True)
class Send:
    at: float  # seconds after the start of the run
    kind: Kind
    event: Message | None  # None for a malformed message
    raw: bytes | None = None

    def payload(self) -> bytes:
        return self.raw if self.event is None else self.event.to_bytes()  # type: ignore[return-value]


Row = dict[str, FeatureValue]
CHANNELS = ("search", "social", "display")
COUNTRIES = ("US", "DE", "BR", "IN")
DEVICES = ("mobile", "desktop")


def _ctr_row(rng: np.random.Generator, drifted: bool) -> tuple[Row, float]:
    channel = CHANNELS[int(rng.integers(3))]
    country = COUNTRIES[int(rng.integers(4))]
    hour = int(rng.integers(24))
    # After the drift creatives get better and social stops converting like search.
    creative = float(rng.beta(5, 2) if drifted else rng.beta(2, 5))
    bid = float(rng.lognormal(0.0, 0.4))
    base = {"search": 0.06, "social": 0.035, "display": 0.015}[channel]
    if drifted and channel == "social":
        base = 0.09
    rate = base * (0.6 + 0.9 * creative) * (1.1 if country == "US" else 1.0) * (0.9 + 0.1 * bid)
    rate *= 1.0 + 0.15 * math.sin(hour / 24 * 2 * math.pi)
    row: Row = {
        "channel": channel,
        "country": country,
        "hour": hour,
        "creative_score": round(creative, 4),
        "bid": round(bid, 4),
    }
    return row, min(max(rate, 0.0), 1.0)


def _purchase_row(rng: np.random.Generator, drifted: bool) -> tuple[Row, float]:
    visits = int(rng.poisson(6 if drifted else 3))
    cart = float(rng.gamma(2.0, 40.0))
    days = float(rng.exponential(10.0))
    device = DEVICES[int(rng.integers(2))]
    z = -2.2 + 0.25 * visits + 0.006 * cart - 0.05 * days + (0.4 if device == "desktop" else 0.0)
    if drifted:
        z -= 1.0 + 0.15 * visits  # visits stop meaning intent: a concept drift
    row: Row = {
        "visits": visits,
        "cart_value": round(cart, 2),
        "days_since_last": round(days, 2),
        "device": device,
    }
    return row, 1.0 / (1.0 + math.exp(-z))


def _vector(row: Row) -> list[float]:
    """One-hot categoricals, numbers as they are: what the simple model sees."""
    out: list[float] = []
    for key in sorted(row):
        value = row[key]
        if isinstance(value, str):
            vocab = {"channel": CHANNELS, "country": COUNTRIES, "device": DEVICES}[key]
            out.extend(1.0 if value == v else 0.0 for v in vocab)
        else:
            out.append(float(value or 0.0))
    return out


Generator = Callable[[np.random.Generator, bool], tuple[Row, float]]


def _fit_champion(gen: Generator, binary: bool, seed: int) -> Callable[[Row], float]:
    rng = np.random.default_rng(seed + 1000)
    rows, targets = zip(*(gen(rng, False) for _ in range(3000)), strict=True)
    x = np.array([_vector(r) for r in rows])
    if binary:
        y = np.array([rng.random() < p for p in targets], dtype=int)
        clf = LogisticRegression(max_iter=500).fit(x, y)
        return lambda row: float(clf.predict_proba(np.array([_vector(row)]))[0, 1])
    reg = LinearRegression().fit(x, np.array(targets))
    return lambda row: float(min(max(reg.predict(np.array([_vector(row)]))[0], 0.0), 1.0))


def _malformed(i: int, start: datetime, event_id: str) -> tuple[Kind, bytes]:
    far_future = (start + timedelta(days=30)).isoformat()
    variants: list[tuple[Kind, bytes]] = [
        ("prediction", b"\x00\xffnot json at all"),
        ("prediction", json.dumps({"prediction_id": f"bad-{i}", "model": "ctr"}).encode()),
        (
            "prediction",
            json.dumps(
                {
                    "event_id": event_id,
                    "prediction_id": f"bad-{i}",
                    "model": "no-such-model",
                    "model_version": "1",
                    "prediction": 0.5,
                }
            ).encode(),
        ),
        ("outcome", json.dumps({"prediction_id": f"bad-{i}", "value": "lots"}).encode()),
        (
            "feedback",
            json.dumps(
                {
                    "event_id": event_id,
                    "prediction_id": f"bad-{i}",
                    "label": 1.0,
                    "given_at": far_future,
                }
            ).encode(),
        ),
    ]
    return variants[i % len(variants)]


def _event_id(spec: ScenarioSpec, i: int, kind: str) -> uuid.UUID:
    # Reproducible for a run, distinct across runs: replays of one run dedupe, new runs don't.
    return uuid.uuid5(uuid.NAMESPACE_URL, f"outcomeloop:{spec.run_id}:{spec.name}:{i}:{kind}")


def build_schedule(spec: ScenarioSpec, start: datetime) -> list[Send]:
    """Every message of the run with the second it should be sent, in send order."""
    if spec.name not in SCENARIOS:
        raise ValueError(f"unknown scenario {spec.name!r}; choose one of {', '.join(SCENARIOS)}")
    binary = spec.name == "purchase"
    gen: Generator = _purchase_row if binary else _ctr_row
    champion = _fit_champion(gen, binary, spec.seed)
    rng = np.random.default_rng(spec.seed)
    sends: list[Send] = []
    n_entities = max(spec.count // 4, 1)
    for i in range(spec.count):
        t = i / spec.rate
        drifted = i >= spec.drift_at * spec.count
        row, truth = gen(rng, drifted)
        made_at = start + timedelta(seconds=t)
        prediction = PredictionMade(
            event_id=_event_id(spec, i, "prediction"),
            prediction_id=f"{spec.run_id}-{i}",
            model=spec.name,
            model_version=spec.version,
            entity_id=f"{spec.run_id}-u{int(rng.integers(n_entities))}" if binary else None,
            features=row,
            prediction=round(champion(row), 6),
            predicted_at=made_at,
        )
        # Some predictions are logged late (batch export), so their outcome gets there first.
        late = rng.random() < spec.late_prediction_share
        sends.append(
            Send(t + (spec.mean_outcome_delay * 2.5 if late else 0.0), "prediction", prediction)
        )

        delay = float(rng.exponential(spec.mean_outcome_delay))
        outcome: OutcomeObserved | None = None
        if binary:
            if rng.random() < truth:  # a purchase happened; attributed by entity
                outcome = OutcomeObserved(
                    event_id=_event_id(spec, i, "outcome"),
                    entity_id=prediction.entity_id,
                    model=spec.name,
                    outcome_kind="purchase",
                    value=1.0,
                    observed_at=made_at + timedelta(seconds=delay),
                )
        elif rng.random() > 0.08:  # most ads get a measured rate; some never report
            impressions = 2000
            clicks = int(rng.binomial(impressions, truth))
            outcome = OutcomeObserved(
                event_id=_event_id(spec, i, "outcome"),
                prediction_id=prediction.prediction_id,
                outcome_kind="measured",
                value=clicks / impressions,
                observed_at=made_at + timedelta(seconds=delay),
            )
        if outcome is not None:
            sends.append(Send(t + delay, "outcome", outcome))
        if rng.random() < spec.feedback_share:
            label = float(round(truth)) if binary else round(truth, 4)
            fb_delay = delay + float(rng.exponential(1.0))
            sends.append(
                Send(
                    t + fb_delay,
                    "feedback",
                    FeedbackGiven(
                        event_id=_event_id(spec, i, "feedback"),
                        prediction_id=prediction.prediction_id,
                        label=label,
                        source="human",
                        given_at=made_at + timedelta(seconds=fb_delay),
                    ),
                )
            )
        if rng.random() < spec.malformed_share:
            kind, raw = _malformed(i, start, str(_event_id(spec, i, "malformed")))
            sends.append(Send(t, kind, None, raw))
    sends.sort(key=lambda s: s.at)
    return sends
