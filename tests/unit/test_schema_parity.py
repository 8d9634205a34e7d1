"""The JSON Schema files in schemas/json give the worker's verdict on every message.

A producer in another language validates with ``jsonschema`` (here Draft 2020-12, format
checking on, the files as written); the worker decodes with ``decode``. They must agree
on every message of one corpus per topic (every error type ``decode`` gives, the wire
forms the issue found, the patterns' edges) and on generated messages near the edges,
with two exceptions, both listed here and both stated in each schema's description:

- rules only the worker can check (WORKER_ONLY: its configured models, its clock, the
  size of the message as sent, the features a model declares). Without them (a worker
  that knows every model, has no clock and no size limit) it must agree exactly;
- two forms JSON Schema cannot tell apart (INEXPRESSIBLE): 1.0 for 1, and feature names
  that differ only in the whitespace the worker strips.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import TypeAdapter, ValidationError

from schemas import command_adapter
from schemas.base import AwareTime, Identifier
from schemas.events import event_time
from schemas.export import CONTROL_SCHEMA, JSON_DIR, TIME_PATTERN
from tests.conftest import TEST_MODELS
from tests.unit.test_decode_parity import (
    BASE,
    DECLARED,
    EVENT_ID,
    REFUSING,
    TOPIC,
    base,
    corpus,
    encode,
    near_the_edge,
)
from workers.errors import RejectedInput
from workers.ingest.decode import CONTRACTS, Checks, RawMessage, decode, decode_with
from workers.ingest.fast_decode import WHITESPACE
from workers.settings import ModelConfig, Settings

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
AT = "2026-11-23T11:59:00Z"
TIME_FIELD = {"prediction": "predicted_at", "outcome": "observed_at", "feedback": "given_at"}
KINDS = tuple(TIME_FIELD)
LIMITS = BASE.limits


def load(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((JSON_DIR / f"{name}.schema.json").read_text())
    return schema


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(load(name), format_checker=Draft202012Validator.FORMAT_CHECKER)


SCHEMAS = {kind: load(contract.__name__) for kind, contract in CONTRACTS.items()}
VALIDATORS = {kind: validator(contract.__name__) for kind, contract in CONTRACTS.items()}
CONTROL = validator(CONTROL_SCHEMA)


# --- what the worker alone checks, and what JSON Schema cannot say -------------------


@dataclass(frozen=True)
class WorkerOnly:
    """A rule only the worker can check, how its refusal reads, and the phrases that
    state it in the description of each schema it applies to."""

    error_type: str
    reason_has: str
    kinds: tuple[str, ...]
    described: tuple[str, ...]


WORKER_ONLY = {
    "a model that is not configured": WorkerOnly(
        "unknown_model", "", ("prediction", "outcome"), ("names a configured model",)
    ),
    "a binary model's prediction outside [0, 1]": WorkerOnly(
        "out_of_range", "binary model", ("prediction",), ("binary model", "in [0, 1]")
    ),
    "a time too far from the worker's clock": WorkerOnly(
        "impossible_time",
        "",
        KINDS,
        (
            "300 s after the worker's clock",
            "time.max_event_age_seconds",
            "becomes the time the worker receives the event",
        ),
    ),
    "a feature the model does not declare": WorkerOnly(
        "undeclared_feature", "", ("prediction",), ("does not declare", "undeclared_feature")
    ),
    "a message over limits.max_message_bytes": WorkerOnly(
        "too_large", "", KINDS, ("at most 1048576 bytes",)
    ),
}
# Rules that need the database (not decode's), described all the same.
DESCRIBED_TOO = {
    "prediction": (
        "Kafka key: prediction_id",
        "conflicting_duplicate",
        "same one when that event is sent again",
        "U+0000",
    ),
    "outcome": (
        "Kafka key: prediction_id, or entity_id",
        "time.max_outcome_before_prediction_seconds",
        "U+0000",
    ),
    "feedback": ("Kafka key: prediction_id", "U+0000"),
}
INEXPRESSIBLE = {
    "schema_version written 1.0": "the worker refuses 1.0",
    "feature names equal once stripped": "Feature names equal once stripped are one feature",
}


class NoClock(Checks):
    """``decode``'s checks with the clock's rules off (no time is too early or too late)."""

    def _check_time(self, when: datetime) -> None:
        return None


@cache
def _models(extra: str | None) -> dict[str, ModelConfig]:
    names = {*TEST_MODELS, *([extra] if extra else [])}
    return {n: ModelConfig(task="regression", horizon_seconds=3600) for n in names}


def _stripped(value: Any) -> str | None:
    return value.strip(WHITESPACE) if isinstance(value, str) else None


def without_worker_only(s: Settings, value: Any) -> Checks:
    """The worker as the schema states it: every model configured, none binary, none
    declaring features, no size limit, no clock."""
    model = _stripped(value.get("model")) if isinstance(value, dict) else None
    relaxed = s.model_copy(
        update={
            "models": _models(model or None),
            "limits": s.limits.model_copy(update={"max_message_bytes": 2**62}),
        }
    )
    return NoClock._work_out(relaxed, NOW)


# --- verdicts ---------------------------------------------------------------------------

NOT_JSON = object()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def wire_json(raw: bytes) -> Any:
    """What a validator sees: the message as JSON, i.e. UTF-8 text (RFC 8259) with no NaN
    or Infinity and no lone surrogate (I-JSON); NOT_JSON for anything else."""
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # a lone surrogate fails
    except (ValueError, RecursionError):  # UnicodeError is a ValueError
        return NOT_JSON
    return value


def schema_accepts(check: Draft202012Validator, value: Any) -> bool:
    return value is not NOT_JSON and check.is_valid(value)


def worker(kind: str, raw: bytes, checks: Checks) -> RejectedInput | None:
    """None if the worker accepts ``raw``, else its refusal."""
    try:
        decode_with(RawMessage(TOPIC[kind], 0, 0, None, raw), checks)
    except RejectedInput as exc:
        return exc
    return None


def clock_for(kind: str, value: Any) -> datetime:
    """NOW for a message with its time; a message without one gets the worker's receive
    time, so it is decoded at the real clock (deterministic either way)."""
    if isinstance(value, dict) and TIME_FIELD[kind] in value:
        return NOW
    return datetime.now(UTC)


def _features_collide(value: Any) -> bool:
    features = value.get("features") if isinstance(value, dict) else None
    if not isinstance(features, dict):
        return False
    return len({_stripped(k) for k in features}) < len(features)


def inexpressible(kind: str, value: Any, schema_ok: bool, s: Settings) -> str | None:
    """Which INEXPRESSIBLE form explains a different verdict, proven by the verdicts
    agreeing once it is written the one way both read alike; None if none does."""
    if not isinstance(value, dict):
        return None
    version = value.get("schema_version")
    if schema_ok and type(version) is float and version == 1:
        fixed = encode({**value, "schema_version": 1})
        assert worker(kind, fixed, without_worker_only(s, value)) is None, value
        return "schema_version written 1.0"
    if not schema_ok and _features_collide(value):
        once = {_stripped(k): v for k, v in value["features"].items()}
        assert VALIDATORS[kind].is_valid({**value, "features": once}), value
        return "feature names equal once stripped"
    return None


def assert_same_verdict(kind: str, raw: bytes, s: Settings = BASE) -> tuple[bool, str | None]:
    """The schema's verdict and, when the worker refuses by a rule only it can check,
    which one."""
    value = wire_json(raw)
    schema_ok = schema_accepts(VALIDATORS[kind], value)
    relaxed = worker(kind, raw, without_worker_only(s, value))
    if schema_ok != (relaxed is None):
        known = inexpressible(kind, value, schema_ok, s)
        assert known is not None, (schema_ok, relaxed, raw[:300])
        return schema_ok, known
    strict = worker(kind, raw, Checks.at(s, clock_for(kind, value)))
    if strict is None:
        assert relaxed is None, "the rules only the worker checks only ever add refusals"
        return schema_ok, None
    if relaxed is not None:
        return schema_ok, None  # both refuse
    rule = next(
        (
            name
            for name, r in WORKER_ONLY.items()
            if strict.error_type == r.error_type
            and r.reason_has in strict.reason
            and kind in r.kinds
        ),
        None,
    )
    assert rule is not None, f"schema accepts, worker refuses: {strict.error_type}: {strict}"
    return schema_ok, rule


# --- the corpus -------------------------------------------------------------------------


def msg(kind: str, /, *drop: str, **changes: Any) -> bytes:
    message = base(kind) | {TIME_FIELD[kind]: AT}
    for name in drop:
        del message[name]
    return encode(message | changes)


def P(*drop: str, **changes: Any) -> tuple[str, bytes]:
    return "prediction", msg("prediction", *drop, **changes)


def O(*drop: str, **changes: Any) -> tuple[str, bytes]:  # noqa: E743
    return "outcome", msg("outcome", *drop, **changes)


def F(*drop: str, **changes: Any) -> tuple[str, bytes]:
    return "feedback", msg("feedback", *drop, **changes)


ID_200 = "x" * 200
PAD = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000"
TEXT_1024 = "y" * 1024
ACCEPTED, REFUSED = "accepted", "refused"
CLOCK = "a time too far from the worker's clock"
SURROGATE = msg("prediction").replace(b'"p1"', b'"\\udc00"')
# fmt: off
SCHEMA_CORPUS: list[tuple[str, tuple[str, bytes], str, str | None]] = [
    # name, message, the schema's verdict, the worker-only rule or inexpressible form
    # The findings: refused by both now.
    ("epoch time", P(predicted_at=1_795_000_000), REFUSED, None),
    ("prediction as text", P(prediction="0.4"), REFUSED, None),
    ("value true", O(value=True), REFUSED, None),
    ("uuid without dashes", P(event_id=EVENT_ID.replace("-", "")), REFUSED, None),
    ("space for T", P(predicted_at="2026-11-23 11:59:00Z"), REFUSED, None),
    ("blank identifier", P(prediction_id="  "), REFUSED, None),
    ("outcome without a join key", O("prediction_id"), REFUSED, None),
    ("outcome null join keys", O(prediction_id=None, entity_id=None), REFUSED, None),
    ("outcome blank join key", O(prediction_id="\u3000", entity_id=None), REFUSED, None),
    ("outcome by entity, null id", O(prediction_id=None, entity_id="u1"), ACCEPTED, None),
    # The worker-only rules: the schema accepts, the worker refuses, deterministically.
    ("unknown model", P(model="nope"), ACCEPTED, "a model that is not configured"),
    ("outcome unknown model", O(model="nope"), ACCEPTED, "a model that is not configured"),
    ("classifier above 1", P(model="purchase", prediction=1.01),
     ACCEPTED, "a binary model's prediction outside [0, 1]"),
    ("classifier below 0", P(model=" purchase ", prediction=-0.5),
     ACCEPTED, "a binary model's prediction outside [0, 1]"),
    ("regression above 1", P(prediction=7.5), ACCEPTED, None),
    ("6 minutes ahead", P(predicted_at="2026-11-23T12:06:00Z"),
     ACCEPTED, CLOCK),
    ("4 minutes ahead", P(predicted_at="2026-11-23T12:04:00Z"), ACCEPTED, None),
    ("two years old", F(given_at="2024-11-23T12:00:00Z"),
     ACCEPTED, CLOCK),
    ("before year 1 in UTC", O(observed_at="0001-01-01T00:00:00+01:00"),
     ACCEPTED, CLOCK),
    ("after year 9999 in UTC", O(observed_at="9999-12-31T23:59:59-23:59"),
     ACCEPTED, CLOCK),
    ("over 1 MiB", ("prediction", msg("prediction") + b" " * LIMITS.max_message_bytes),
     ACCEPTED, "a message over limits.max_message_bytes"),
    # Times: the pattern is RFC 3339 as the worker reads it, and a real date.
    ("leap day", P(predicted_at="2024-02-29T11:59:00Z"), ACCEPTED, CLOCK),
    ("leap day 2000", P(predicted_at="2000-02-29T11:59:00Z"), ACCEPTED, CLOCK),
    ("no leap day 2100", P(predicted_at="2100-02-29T11:59:00Z"), REFUSED, None),
    ("no leap day 2026", P(predicted_at="2026-02-29T11:59:00Z"), REFUSED, None),
    ("april 31", P(predicted_at="2026-04-31T11:59:00Z"), REFUSED, None),
    ("month 13", P(predicted_at="2026-13-01T11:59:00Z"), REFUSED, None),
    ("day 0", P(predicted_at="2026-11-00T11:59:00Z"), REFUSED, None),
    ("offset 23:59", P(predicted_at="2026-11-24T11:58:00+23:59"), ACCEPTED, None),
    ("offset -23:59", P(predicted_at="2026-11-22T12:00:00-23:59"), ACCEPTED, None),
    ("offset 24:00", P(predicted_at="2026-11-24T11:59:00+24:00"), REFUSED, None),
    ("40 fraction digits", P(predicted_at="2026-11-23T11:59:00." + "1" * 40 + "Z"), ACCEPTED, None),
    ("time then newline", P(predicted_at=AT + "\n"), REFUSED, None),
    ("time then space", P(predicted_at=AT + " "), REFUSED, None),
    ("year 10000", P(predicted_at="10000-01-01T00:00:00Z"), REFUSED, None),
    ("arabic-indic digit", P(predicted_at="2026-11-23T11:59:0\u0660Z"), REFUSED, None),
    # UUIDs.
    ("upper-case uuid", P(event_id=EVENT_ID.upper()), ACCEPTED, None),
    ("nil uuid", P(event_id="00000000-0000-0000-0000-000000000000"), ACCEPTED, None),
    ("uuid then newline", P(event_id=EVENT_ID + "\n"), REFUSED, None),
    ("padded uuid", P(event_id=f" {EVENT_ID}"), REFUSED, None),
    ("uuid with a non-ascii digit", P(event_id=EVENT_ID[:-1] + "\u0661"), REFUSED, None),
    ("missing event_id", P("event_id"), REFUSED, None),
    # Identifiers: stripped of exactly pydantic's whitespace, then 1..200 characters.
    ("200 chars, every space around", P(prediction_id=PAD + ID_200 + PAD), ACCEPTED, None),
    ("201 chars", P(model_version=ID_200 + "x"), REFUSED, None),
    ("201 chars inside padding", P(model_version=f" {ID_200}x "), REFUSED, None),
    ("one char, padded", P(prediction_id="\u3000p\u2028"), ACCEPTED, None),
    ("only whitespace of every kind", P(prediction_id=PAD), REFUSED, None),
    ("zero width space is text", P(prediction_id="\u200b"), ACCEPTED, None),
    ("info separator is text", P(prediction_id="\x1f"), ACCEPTED, None),
    ("BOM is text", P(prediction_id="\ufeff"), ACCEPTED, None),
    ("inner newline", P(prediction_id="a\nb"), ACCEPTED, None),
    ("NUL is text (PostgreSQL refuses it later)", P(prediction_id="p\x00"), ACCEPTED, None),
    ("blank source", F(source=" "), REFUSED, None),
    ("blank feature name", P(features={"\u2000": 1}), REFUSED, None),
    # Numbers: JSON numbers within ±1e15, integers included.
    ("prediction 1e15", P(prediction=1e15), ACCEPTED, None),
    ("prediction -10**15", P(prediction=-(10**15)), ACCEPTED, None),
    ("prediction just over", P(prediction=1e15 + 0.125), REFUSED, None),
    ("prediction 10**15 + 1", P(prediction=10**15 + 1), REFUSED, None),
    ("label 10**400", F(label=10**400), REFUSED, None),
    ("label false", F(label=False), REFUSED, None),
    ("value null", O(value=None), REFUSED, None),
    ("feature -10**15", P(features={"n": -(10**15)}), ACCEPTED, None),
    ("feature below", P(features={"n": -(10**15) - 1}), REFUSED, None),
    ("feature 1e-320", P(features={"n": 1e-320}), ACCEPTED, None),
    # Feature strings: at most 1024 characters once stripped; blank is fine.
    ("1024-char string, padded", P(features={"s": PAD + TEXT_1024 + PAD}), ACCEPTED, None),
    ("1025-char string", P(features={"s": TEXT_1024 + "y"}), REFUSED, None),
    ("blank string feature", P(features={"s": PAD}), ACCEPTED, None),
    ("empty string feature", P(features={"s": ""}), ACCEPTED, None),
    # Feature maps.
    ("500 features", P(features={f"f{i}": i for i in range(500)}), ACCEPTED, None),
    ("501 features", P(features={f"f{i}": i for i in range(501)}), REFUSED, None),
    ("empty features", P(features={}), ACCEPTED, None),
    ("null features", P(features=None), REFUSED, None),
    ("nested list", P(features={"a": []}), REFUSED, None),
    # The other fields.
    ("schema_version 2", P(schema_version=2), REFUSED, None),
    ("kind padded", P(kind=" prediction"), REFUSED, None),
    ("unknown field", F(colour="red"), REFUSED, None),
    ("not an object", ("feedback", b'"feedback"'), REFUSED, None),
    ("lone surrogate", ("prediction", SURROGATE), REFUSED, None),
    ("BOM before the JSON", ("outcome", b"\xef\xbb\xbf" + msg("outcome")), REFUSED, None),
    ("NaN", ("feedback", msg("feedback").replace(b'"label":0.0', b'"label":NaN')), REFUSED, None),
    # What JSON Schema cannot tell apart.
    ("schema_version 1.0", P(schema_version=1.0), ACCEPTED, "schema_version written 1.0"),
    ("501 features, two equal once stripped",
     P(features={**{f"f{i}": i for i in range(500)}, " f0": 0}),
     REFUSED, "feature names equal once stripped"),
    ("an out-of-range value overwritten",
     P(features={" a": "z" * 2000, "a": 1}), REFUSED, "feature names equal once stripped"),
]
# fmt: on


# And with models that declare their features ("a" and "bid" for ctr).
CASES = [(*case, BASE) for case in SCHEMA_CORPUS] + [
    ("undeclared, dropped", P(features={"a": 1, "zz": 2}), ACCEPTED, None, DECLARED),
    (
        "undeclared, refused",
        P(features={"a": 1, "zz": 2}),
        ACCEPTED,
        "a feature the model does not declare",
        REFUSING,
    ),
    ("declared only", P(features={" bid": 2.5}), ACCEPTED, None, REFUSING),
]


@pytest.mark.parametrize(
    ("name", "case", "schema_verdict", "rule", "s"), CASES, ids=[c[0] for c in CASES]
)
def test_the_schema_corpus(
    name: str, case: tuple[str, bytes], schema_verdict: str, rule: str | None, s: Settings
) -> None:
    kind, raw = case
    schema_ok, why = assert_same_verdict(kind, raw, s)
    assert (ACCEPTED if schema_ok else REFUSED, why) == (schema_verdict, rule)


DECODE_CORPUS = corpus()


@pytest.mark.parametrize(
    ("name", "kind", "raw", "expected", "s"),
    DECODE_CORPUS,
    ids=[c[0] for c in DECODE_CORPUS],
)
def test_the_decoders_corpus(name: str, kind: str, raw: bytes, expected: str, s: Settings) -> None:
    """Every error type decode gives: the schema refuses what is not a worker-only rule."""
    schema_ok, rule = assert_same_verdict(kind, raw, s)
    if expected in ("accepted", "impossible_time", "unknown_model", "undeclared_feature"):
        assert schema_ok, rule
    elif expected in ("invalid_payload", "invalid_json", "schema_violation"):
        assert not schema_ok or rule == "schema_version written 1.0"
    elif expected == "too_large":
        assert rule == "a message over limits.max_message_bytes"
    elif expected == "out_of_range":
        assert not schema_ok or rule == "a binary model's prediction outside [0, 1]"
    else:
        assert expected == "too_many_features" and not schema_ok


def test_every_error_type_decode_gives_is_in_the_corpus() -> None:
    seen = {expected for *_, expected, _ in DECODE_CORPUS}
    assert seen >= {
        "accepted",
        "invalid_payload",
        "invalid_json",
        "too_large",
        "schema_violation",
        "unknown_model",
        "impossible_time",
        "out_of_range",
        "too_many_features",
        "undeclared_feature",
    }
    assert {case[3] for case in CASES} >= {*WORKER_ONLY, *INEXPRESSIBLE}


def test_the_worker_only_rules_are_in_the_descriptions() -> None:
    for kind, schema in SCHEMAS.items():
        text = schema["description"]
        for name, rule in WORKER_ONLY.items():
            if kind in rule.kinds:
                for phrase in rule.described:
                    assert phrase in text, (kind, name, phrase)
        for phrase in (*DESCRIBED_TOO[kind], *INEXPRESSIBLE.values()):
            if kind == "prediction" or "Feature names" not in phrase:
                assert phrase in text, (kind, phrase)
        assert "Kafka headers are ignored" in text


# --- generated messages -----------------------------------------------------------------


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=near_the_edge(), s=st.sampled_from([BASE, DECLARED, REFUSING]))
def test_messages_near_the_edge_get_the_same_verdict(case: tuple[str, bytes], s: Settings) -> None:
    assert_same_verdict(*case, s)


def _padded(core: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    edge = st.text(st.sampled_from([*WHITESPACE, "\x1c", "\u200b", "\ufeff", "x"]), max_size=3)
    return st.builds(lambda a, b, c: a + b + c, edge, core, edge)


@st.composite
def wire_times(draw: st.DrawFn) -> str:
    """RFC 3339-ish times from their parts, valid or not in every part."""
    year = draw(st.sampled_from([0, 1, 1900, 2000, 2024, 2026, 2100, 9999]) | st.integers(0, 9999))
    month, day = draw(st.integers(0, 13)), draw(st.sampled_from([1, 28, 29, 30, 31, 0, 32]))
    hour, minute, second = (
        draw(st.integers(0, 24)),
        draw(st.integers(0, 60)),
        draw(st.integers(0, 61)),
    )
    fraction = draw(st.sampled_from(["", "", ".", ".5", ".123456", ".1234567890"]))
    sign, oh, om = draw(st.sampled_from("+-")), draw(st.integers(0, 25)), draw(st.integers(0, 60))
    offset = draw(
        st.sampled_from(["Z", "z", "", f"{sign}{oh:02d}:{om:02d}", f"{sign}{oh:02d}{om:02d}"])
    )
    sep, tail = draw(st.sampled_from("TTt ")), draw(st.sampled_from(["", "", "\n", " "]))
    date = f"{year:04d}-{month:02d}-{day:02d}"
    return f"{date}{sep}{hour:02d}:{minute:02d}:{second:02d}{fraction}{offset}{tail}"


# Real instants in any year, at any whole-minute offset, with or without a fraction.
real_times = st.builds(
    lambda when, minutes, fraction: (
        when.replace(tzinfo=timezone(timedelta(minutes=minutes)))
        .isoformat(timespec="microseconds" if fraction else "seconds")
        .replace("+00:00", "Z")
    ),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(-(24 * 60 - 1), 24 * 60 - 1),
    st.booleans(),
)

EDGES: dict[str, st.SearchStrategy[Any]] = {
    "prediction_id": _padded(st.sampled_from(["", "p", "x" * 199, ID_200, ID_200 + "x"])),
    "entity_id": _padded(st.sampled_from(["", "u", ID_200, ID_200 + "x"])) | st.none(),
    "model": _padded(st.sampled_from(["ctr", "purchase", "nope", ""])),
    "event_id": st.uuids().map(str)
    | st.uuids().map(lambda u: str(u).upper())
    | st.builds(lambda u, s: str(u) + s, st.uuids(), st.sampled_from(["\n", " ", "0", "}"])),
    "prediction": st.sampled_from([1e15, -1e15, 10**15, 10**15 + 1, 1e15 + 0.125, 0.0, 1.0, 1.5])
    | st.floats(-2e15, 2e15),
    "value": st.integers(-(2 * 10**15), 2 * 10**15) | st.floats(allow_nan=False),
    "features": st.dictionaries(
        _padded(st.sampled_from(["a", "bid", "", "x" * 200])),
        st.none()
        | st.booleans()
        | st.integers(-(2 * 10**15), 2 * 10**15)
        | _padded(st.sampled_from(["", "s", "y" * 1023, TEXT_1024, TEXT_1024 + "y"])),
        max_size=4,
    ),
    "many_features": st.tuples(st.integers(498, 502), st.booleans()),
    "time": wire_times() | real_times,
}


@st.composite
def wire_edges(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid message with one to three fields at the edge of their pattern or bound."""
    kind = draw(st.sampled_from(KINDS))
    message = base(kind) | {TIME_FIELD[kind]: AT}
    for name in draw(st.lists(st.sampled_from(sorted(EDGES)), min_size=1, max_size=3)):
        got = draw(EDGES[name])
        if name == "time":
            message[TIME_FIELD[kind]] = got
        elif name == "many_features":
            count, collide = got
            message["features"] = {f"f{i}": i for i in range(count)} | (
                {" f0 ": 1} if collide else {}
            )
        elif name == "value":
            message["label" if kind == "feedback" else "value"] = got
        else:
            message[name] = got
    return kind, encode(message)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=wire_edges(), s=st.sampled_from([BASE, REFUSING]))
def test_messages_at_the_patterns_edges_get_the_same_verdict(
    case: tuple[str, bytes], s: Settings
) -> None:
    assert_same_verdict(*case, s)


# --- the patterns, against the contract's own types -------------------------------------

_time = TypeAdapter(AwareTime)
_identifier = TypeAdapter(Identifier)


def _pydantic_accepts(adapter: TypeAdapter[Any], text: str) -> bool:
    try:
        adapter.validate_json(json.dumps(text))
    except ValidationError:
        return False
    return True


def test_the_time_pattern_knows_the_calendar() -> None:
    """29 February in every year 0000-9999, and every day number of every month."""
    pattern = re.compile(TIME_PATTERN)
    texts = [f"{y:04d}-02-29T00:00:00Z" for y in range(10000)]
    texts += [
        f"{y}-{m:02d}-{d:02d}T00:00:00Z"
        for y in (1900, 2000, 2026)
        for m in range(14)
        for d in range(33)
    ]
    for text in texts:
        assert bool(pattern.search(text)) == _pydantic_accepts(_time, text), text


@pytest.mark.parametrize(
    "char", [*WHITESPACE, "\x1c", "\x1f", "\x85", "\u180e", "\u200b", "\ufeff"]
)
def test_the_identifier_pattern_strips_what_pydantic_strips(char: str) -> None:
    pattern = SCHEMAS["prediction"]["properties"]["prediction_id"]["pattern"]
    for text in (char, char * 3, f"{char}x{char}", f"{char}{ID_200}{char}", f"{char}{ID_200}x"):
        assert bool(re.search(pattern, text)) == _pydantic_accepts(_identifier, text), repr(text)


def _patterns(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return own + [p for v in node.values() for p in _patterns(v)]
    if isinstance(node, list):
        return [p for v in node for p in _patterns(v)]
    return []


@pytest.mark.parametrize("path", sorted(JSON_DIR.glob("*.schema.json")), ids=lambda p: p.name)
def test_schema_files_are_valid_and_portable(path: Any) -> None:
    """Valid Draft 2020-12 schemas whose patterns every common engine reads alike: no
    look-around or back-references (Go's RE2 has none), counted repeats of at most 1000
    (RE2's limit), digits as [0-9] (\\d is wider in Python)."""
    schema = json.loads(path.read_text())
    Draft202012Validator.check_schema(schema)
    for pattern in _patterns(schema):
        re.compile(pattern)
        assert not re.search(r"\(\?[=!<]|\\[1-9dDwWbB]", pattern), pattern
        assert all(int(n) <= 1000 for n in re.findall(r"\{(?:\d+,)?(\d+)\}", pattern)), pattern


# --- the control topic ------------------------------------------------------------------


def command(**changes: Any) -> dict[str, Any]:
    return {
        "event_id": EVENT_ID,
        "command": "retrain",
        "model": "ctr",
        "issued_by": "alice",
        "reason": "MAE too high",
        "issued_at": AT,
        "signature": "ab" * 32,
    } | changes


def assert_same_command_verdict(value: dict[str, Any] | bytes) -> tuple[bool, str | None]:
    """The control topic's schema against the worker's decoding of a command (what it
    checks next needs its keys, clock and models: described, not compared)."""
    raw = value if isinstance(value, bytes) else encode(value)
    parsed = wire_json(raw)
    schema_ok = schema_accepts(CONTROL, parsed)
    try:
        command_adapter.validate_json(raw)
        worker_ok = True
    except ValidationError:
        worker_ok = False
    if schema_ok == worker_ok:
        return schema_ok, None
    if isinstance(parsed, dict) and type(parsed.get("schema_version")) is float:
        fixed = encode({**parsed, "schema_version": 1})
        command_adapter.validate_json(fixed)
        return schema_ok, "schema_version written 1.0"
    # The worker makes up an event_id for a command without one (and then cannot know a
    # redelivery of it): the schema requires one, as for every other message.
    assert worker_ok and isinstance(parsed, dict) and "event_id" not in parsed, raw[:300]
    assert CONTROL.is_valid({**parsed, "event_id": str(uuid4())})
    return schema_ok, "event_id missing"


# fmt: off
CONTROL_CORPUS: list[tuple[str, dict[str, Any] | bytes, str, str | None]] = [
    ("retrain", command(), ACCEPTED, None),
    ("approve", command(command="approve", version="v7"), ACCEPTED, None),
    ("every command", command(command="pause", reason="", signature=None), ACCEPTED, None),
    ("no issued_at, no reason, no signature",
     {k: v for k, v in command().items() if k not in ("issued_at", "reason", "signature")},
     ACCEPTED, None),
    ("approve without version", command(command="approve"), REFUSED, None),
    ("retrain with a version", command(version="v7"), REFUSED, None),
    ("unknown command", command(command="explode"), REFUSED, None),
    ("padded command", command(command=" retrain"), REFUSED, None),
    ("no command", {k: v for k, v in command().items() if k != "command"}, REFUSED, None),
    ("2000-char reason, padded", command(reason=f"{PAD}{'r' * 2000}{PAD}"), ACCEPTED, None),
    ("2001-char reason", command(reason="r" * 2001), REFUSED, None),
    ("blank issuer", command(issued_by="\u3000"), REFUSED, None),
    ("epoch issued_at", command(issued_at=1_795_000_000), REFUSED, None),
    ("unknown field", command(urgent=True), REFUSED, None),
    ("not JSON", b"retrain ctr", REFUSED, None),
    ("schema_version 1.0", command(schema_version=1.0), ACCEPTED, "schema_version written 1.0"),
    ("no event_id", {k: v for k, v in command().items() if k != "event_id"},
     REFUSED, "event_id missing"),
]
# fmt: on


@pytest.mark.parametrize(
    ("name", "value", "schema_verdict", "known"), CONTROL_CORPUS, ids=[c[0] for c in CONTROL_CORPUS]
)
def test_the_control_corpus(
    name: str, value: dict[str, Any] | bytes, schema_verdict: str, known: str | None
) -> None:
    schema_ok, why = assert_same_command_verdict(value)
    assert (ACCEPTED if schema_ok else REFUSED, why) == (schema_verdict, known)


COMMAND_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "command": st.sampled_from(
        ["retrain", "approve", "reject", "rollback", "pause", "resume", "x"]
    ),
    "version": EDGES["prediction_id"],
    "model": EDGES["model"],
    "issued_by": EDGES["prediction_id"],
    "reason": _padded(st.sampled_from(["", "r" * 1999, "r" * 2000, "r" * 2001])) | st.integers(),
    "issued_at": wire_times() | real_times,
    "signature": st.none() | st.text(max_size=3) | st.integers(),
    "event_id": EDGES["event_id"],
    "schema_version": st.sampled_from([1, 2, 1.0, "1", True]),
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_commands_near_the_edge_get_the_same_verdict(data: st.DataObject) -> None:
    value = command()
    for name in data.draw(st.lists(st.sampled_from(sorted(COMMAND_FIELDS)), max_size=3)):
        if name in value and data.draw(st.integers(0, 4)) == 0:
            del value[name]
        else:
            value[name] = data.draw(COMMAND_FIELDS[name])
    assert_same_command_verdict(value)


def test_the_control_schema_describes_what_only_the_worker_checks() -> None:
    for schema in (load(CONTROL_SCHEMA), *load(CONTROL_SCHEMA)["$defs"].values()):
        text = schema["description"]
        for phrase in (
            "Kafka key: model",
            "HMAC-SHA256",
            "unauthorized",
            "control.max_command_age_seconds",
            "stale_command",
            "names a configured model",
            "not done again",
            "the worker makes one up",
            INEXPRESSIBLE["schema_version written 1.0"],
        ):
            assert phrase in text, phrase


def test_a_missing_time_is_the_receive_time() -> None:
    """What the descriptions say of a missing time, checked on the worker."""
    for kind in KINDS:
        raw = msg(kind, TIME_FIELD[kind])
        before = datetime.now(UTC)
        event = decode(RawMessage(TOPIC[kind], 0, 0, None, raw), BASE, before)
        assert before - timedelta(seconds=1) <= event_time(event) <= datetime.now(UTC)
