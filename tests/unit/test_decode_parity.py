"""The fast decoder and the reference one give the same verdict on every message: the same
event, field for field, or a refusal with the same error type. One corpus of edge cases
(every error type, the strict wire forms) and generated messages near the contract's edge."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError, field_validator

from schemas.base import Identifier
from schemas.events import FeedbackGiven, IngestEvent, OutcomeObserved, PredictionMade
from tests.conftest import TEST_MODELS
from tests.unit.test_decode_properties import json_values, near_valid
from workers.errors import RejectedInput
from workers.ingest import fast_decode as fast_module
from workers.ingest.batch import sort_batch
from workers.ingest.decode import CONTRACTS, RawMessage, decode, decode_with
from workers.ingest.fast_decode import (
    MAYBE_WHITESPACE,
    WHITESPACE,
    WIRES,
    fast_decode,
    from_wire,
    wire_of,
)
from workers.settings import Settings

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BASE = Settings(kafka_bootstrap="x:1", database_url="postgresql://x/y", models=TEST_MODELS)
DECLARED = BASE.model_copy(
    update={
        "models": {
            **TEST_MODELS,
            "ctr": TEST_MODELS["ctr"].model_copy(update={"features": ("a", "bid")}),
        }
    }
)
REFUSING = DECLARED.model_copy(
    update={"limits": DECLARED.limits.model_copy(update={"undeclared_features": "refuse"})}
)
TOPIC = {"prediction": "ol.predictions", "outcome": "ol.outcomes", "feedback": "ol.feedback"}
TIMES = ("predicted_at", "observed_at", "given_at")
EVENT_ID = "0b6b1f0e-7a39-4c55-9a0e-9a4f6f0c6d11"
AT = "2026-11-23T11:59:00.123456Z"

Verdict = tuple[str, Any]  # ("accepted", event) or ("refused", (error_type, reason))


def base(kind: str) -> dict[str, Any]:
    """A valid message of each kind."""
    if kind == "prediction":
        return {
            "event_id": EVENT_ID,
            "prediction_id": "p1",
            "model": "ctr",
            "model_version": "v1",
            "entity_id": "u1",
            "features": {"a": 1.5, "channel": "search", "n": 3, "flag": True, "none": None},
            "prediction": 0.25,
            "predicted_at": AT,
        }
    if kind == "outcome":
        return {
            "event_id": EVENT_ID,
            "prediction_id": "p1",
            "outcome_kind": "click",
            "value": 1.0,
            "observed_at": AT,
        }
    return {"event_id": EVENT_ID, "prediction_id": "p1", "label": 0.0, "given_at": AT}


def body(of: str, /, *drop: str, compact: bool = True, **changes: Any) -> bytes:
    message = base(of)
    for name in drop:
        del message[name]
    message.update(changes)
    return encode(message, compact=compact)


def encode(message: Any, *, compact: bool = True, ascii_only: bool = False) -> bytes:
    separators = (",", ":") if compact else (", ", ": ")
    text = json.dumps(message, separators=separators, ensure_ascii=ascii_only, allow_nan=True)
    return text.encode("utf-8", "surrogatepass")


def verdict(
    decoder: Callable[..., IngestEvent], raw: RawMessage, s: Settings, now: datetime
) -> Verdict:
    try:
        return "accepted", decoder(raw, s, now)
    except RejectedInput as exc:
        return "refused", (exc.error_type, exc.reason)


def assert_same_event(a: IngestEvent, b: IngestEvent) -> None:
    assert type(a) is type(b)
    assert a.model_fields_set == b.model_fields_set
    da, db = a.model_dump(), b.model_dump()
    for name in TIMES:
        if name in da and name not in a.model_fields_set:  # the decoder's clock: close enough
            assert abs(da.pop(name) - db.pop(name)) < timedelta(minutes=1)
    assert da == db
    # Equal is not enough: 3 == 3.0 == True, and offsets differ in equal instants.
    for name, value in da.items():
        if isinstance(value, UUID):
            # The fast path's UUIDs are asyncpg's C subclass: equal, hashing and printing
            # alike (checked here), a third of the cost to parse.
            assert isinstance(db[name], UUID) and str(value) == str(db[name]), name
            assert hash(value) == hash(db[name]), name
            continue
        assert type(value) is type(db[name]), name
        if isinstance(value, datetime):
            assert value.utcoffset() == db[name].utcoffset(), name
        if isinstance(value, dict):
            assert list(value) == list(db[name]), name
            assert [type(v) for v in value.values()] == [type(v) for v in db[name].values()]


def assert_same_verdict(raw: RawMessage, s: Settings = BASE, now: datetime = NOW) -> Verdict:
    reference = verdict(decode, raw, s, now)
    fast = verdict(fast_decode, raw, s, now)
    assert fast[0] == reference[0], (reference, fast)
    if reference[0] == "accepted":
        assert_same_event(fast[1], reference[1])
        return reference
    (error_type, reason), (fast_type, fast_reason) = reference[1], fast[1]
    assert fast_type == error_type
    # Refusals are decode's own, so even the reasons match; but an impossible time quotes
    # the event's time, which for an absent one is each decoder's clock.
    assert fast_reason == reason or error_type == "impossible_time"
    return reference


def assert_fast_never_laxer(kind: str, value: bytes) -> None:
    """What the fast path accepts by itself, pydantic accepts too, and decodes the same."""
    contract = CONTRACTS[kind]  # type: ignore[index]
    event = from_wire(contract, value)
    if event is None:
        return
    reference = contract.model_validate_json(value)
    assert "event_id" in reference.model_fields_set
    assert_same_event(event, reference)


# --- the corpus -------------------------------------------------------------------------

Case = tuple[str, str, bytes, str, Settings]  # id, kind, body, expected verdict, settings


# Shorthands for the table below: a message of each kind, as (kind, bytes).
def P(*drop: str, **changes: Any) -> tuple[str, bytes]:
    return "prediction", body("prediction", *drop, **changes)


def O(*drop: str, **changes: Any) -> tuple[str, bytes]:  # noqa: E743
    return "outcome", body("outcome", *drop, **changes)


def F(*drop: str, **changes: Any) -> tuple[str, bytes]:
    return "feedback", body("feedback", *drop, **changes)


def edit(case: tuple[str, bytes], old: bytes, new: bytes) -> tuple[str, bytes]:
    kind, raw = case
    assert old in raw
    return kind, raw.replace(old, new)


LONG = "x" * 200
FEATURES_16 = {f"f{i:02d}": i / 7 for i in range(16)}
ASCII_ONLY = ("prediction", encode(base("prediction") | {"entity_id": "ünï 字"}, ascii_only=True))
SPACED = ("prediction", body("prediction", compact=False))
DUPLICATE = edit(P(), b'"prediction":0.25', b'"prediction":0.1,"prediction":0.2')
# fmt: off
CORPUS: list[tuple[str, tuple[str, bytes], str]] = [
    # Accepted, in the forms producers send.
    ("prediction", P(), "accepted"),
    ("spaced json", SPACED, "accepted"),
    ("escaped non-ascii", ASCII_ONLY, "accepted"),
    ("escaped digit", edit(P(), b'"p1"', b'"p\\u0031"'), "accepted"),
    ("16 float features", P(features=FEATURES_16), "accepted"),
    ("no optional fields", P("entity_id", "features"), "accepted"),
    ("explicit kind and version", P(kind="prediction", schema_version=1), "accepted"),
    ("explicit nulls", P(entity_id=None, predicted_class=None), "accepted"),
    ("integer prediction", P(prediction=3), "accepted"),
    ("binary 1", P(model="purchase", prediction=1), "accepted"),
    ("negative zero", P(prediction=-0.0), "accepted"),
    ("predicted class", P(predicted_class=" yes "), "accepted"),
    ("padded identifiers", P(prediction_id=" p1\t", model=" ctr", model_version="v\n"), "accepted"),
    ("nbsp and nel are stripped", P(prediction_id="\xa0p1\x85"), "accepted"),
    ("info separators are kept", P(prediction_id="\x1cp1\x1f"), "accepted"),
    ("zero width space is kept", P(prediction_id="\u200bp1"), "accepted"),
    ("200-char identifier", P(prediction_id=LONG), "accepted"),
    ("200 chars once stripped", P(prediction_id=f"  {LONG} "), "accepted"),
    ("padded feature keys and strings", P(features={" a ": " x ", "b": "  "}), "accepted"),
    ("keys equal once stripped", P(features={" a": 1, "a ": 2, "a": 3.0}), "accepted"),
    ("boolean and null features", P(features={"t": True, "f": False, "n": None}), "accepted"),
    ("big and tiny features", P(features={"i": -(10**15), "f": 1e-300, "z": 0}), "accepted"),
    ("string that looks numeric", P(features={"s": "0.4"}), "accepted"),
    ("duplicate key, last wins", DUPLICATE, "accepted"),
    ("upper-case uuid", P(event_id=EVENT_ID.upper()), "accepted"),
    ("offset time", P(predicted_at="2026-11-23T13:59:00+02:00"), "accepted"),
    ("negative offset", P(predicted_at="2026-11-23T06:29:00-05:30"), "accepted"),
    ("minus zero offset", P(predicted_at="2026-11-23T11:59:00-00:00"), "accepted"),
    ("lower-case t and z", P(predicted_at="2026-11-23t11:59:00z"), "accepted"),
    ("no fraction", P(predicted_at="2026-11-23T11:59:00Z"), "accepted"),
    ("one digit fraction", P(predicted_at="2026-11-23T11:59:00.5Z"), "accepted"),
    ("nanoseconds truncated", P(predicted_at="2026-11-23T11:59:00.123456789Z"), "accepted"),
    ("7 digits, not rounded", P(predicted_at="2026-11-23T11:59:59.9999999Z"), "accepted"),
    ("long string once stripped", P(features={"s": " " * 10 + "x" * 1024}), "accepted"),
    ("outcome", O(), "accepted"),
    ("outcome by entity", O("prediction_id", entity_id="u1", model="purchase"), "accepted"),
    ("outcome integer value", O(value=1), "accepted"),
    ("feedback", F(), "accepted"),
    ("feedback integer label", F(label=1), "accepted"),
    ("feedback explicit source", F(source=" audit "), "accepted"),
    # Refused before parsing.
    ("empty", ("prediction", b""), "invalid_payload"),
    ("too large", ("prediction", body("prediction") + b" " * 1_100_000), "too_large"),
    # Not JSON.
    ("garbage", ("prediction", b"\x00\xffnot json"), "invalid_json"),
    ("truncated", ("prediction", body("prediction")[:-5]), "invalid_json"),
    ("trailing comma", ("feedback", body("feedback")[:-1] + b",}"), "invalid_json"),
    ("trailing data", ("feedback", body("feedback") + b"{}"), "invalid_json"),
    ("invalid utf-8", edit(P(entity_id="u"), b'"u"', b'"\xff"'), "invalid_json"),
    ("lone surrogate", edit(P(), b'"p1"', b'"\\ud800"'), "invalid_json"),
    ("schema error, then broken json", edit(P(), b"Z\"}", b'Z","x":1,'), "invalid_json"),
    # Against the contract.
    ("not an object", ("outcome", b"[1, 2]"), "schema_violation"),
    ("missing event_id", P("event_id"), "schema_violation"),
    ("missing prediction", P("prediction"), "schema_violation"),
    ("unknown field", P(colour="red"), "schema_violation"),
    ("another topic's kind", P(kind="outcome"), "schema_violation"),
    ("schema_version 2", P(schema_version=2), "schema_violation"),
    ("schema_version as text", P(schema_version="1"), "schema_violation"),
    ("schema_version as float", P(schema_version=1.0), "schema_violation"),
    ("schema_version as bool", P(schema_version=True), "schema_violation"),
    ("prediction as text", P(prediction="0.4"), "schema_violation"),
    ("prediction as bool", P(prediction=True), "schema_violation"),
    ("prediction null", P(prediction=None), "schema_violation"),
    ("prediction overflows", edit(P(), b"0.25", b"1e400"), "schema_violation"),
    ("NaN label", edit(F(), b'"label":0.0', b'"label":NaN'), "schema_violation"),
    ("label as text", F(label="1"), "schema_violation"),
    ("value as bool", O(value=False), "schema_violation"),
    ("epoch seconds", P(predicted_at=1_795_000_000), "schema_violation"),
    ("epoch as text", P(predicted_at="1795000000"), "schema_violation"),
    ("space for T", P(predicted_at="2026-11-23 11:59:00Z"), "schema_violation"),
    ("naive time", P(predicted_at="2026-11-23T11:59:00"), "schema_violation"),
    ("no seconds", P(predicted_at="2026-11-23T11:59Z"), "schema_violation"),
    ("offset without colon", P(predicted_at="2026-11-23T11:59:00+0100"), "schema_violation"),
    ("hours-only offset", P(predicted_at="2026-11-23T11:59:00+01"), "schema_violation"),
    ("comma fraction", P(predicted_at="2026-11-23T11:59:00,5Z"), "schema_violation"),
    ("empty fraction", P(predicted_at="2026-11-23T11:59:00.Z"), "schema_violation"),
    ("basic format", P(predicted_at="20261123T115900Z"), "schema_violation"),
    ("february 30", P(predicted_at="2026-02-30T11:59:00Z"), "schema_violation"),
    ("hour 24", P(predicted_at="2026-11-23T24:00:00Z"), "schema_violation"),
    ("leap second", P(predicted_at="2026-11-23T11:59:60Z"), "schema_violation"),
    ("offset 24:00", P(predicted_at="2026-11-23T11:59:00+24:00"), "schema_violation"),
    ("offset minute 60", P(predicted_at="2026-11-23T11:59:00+01:60"), "schema_violation"),
    ("year 0", P(predicted_at="0000-11-23T11:59:00Z"), "schema_violation"),
    ("wide digits", P(predicted_at="\uff12026-11-23T11:59:00Z"), "schema_violation"),
    ("padded time", P(predicted_at=f" {AT}"), "schema_violation"),
    ("uuid without dashes", P(event_id=EVENT_ID.replace("-", "")), "schema_violation"),
    ("uuid in braces", P(event_id="{" + EVENT_ID + "}"), "schema_violation"),
    ("uuid as urn", P(event_id="urn:uuid:" + EVENT_ID), "schema_violation"),
    ("uuid dash misplaced", P(event_id="0b6b1f0-e7a39-4c55-9a0e-9a4f6f0c6d11"), "schema_violation"),
    ("uuid as number", P(event_id=5), "schema_violation"),
    ("whitespace-only identifier", P(prediction_id=" \t"), "schema_violation"),
    ("empty identifier", P(model_version=""), "schema_violation"),
    ("201-char identifier", P(prediction_id=LONG + "x"), "schema_violation"),
    ("identifier as number", P(prediction_id=7), "schema_violation"),
    ("nested feature", P(features={"a": {"b": 1}}), "schema_violation"),
    ("list feature", P(features={"a": [1]}), "schema_violation"),
    ("empty feature name", P(features={"": 1}), "schema_violation"),
    ("whitespace feature name", P(features={"  ": 1}), "schema_violation"),
    ("201-char feature name", P(features={LONG + "x": 1}), "schema_violation"),
    ("features as list", P(features=[1, 2]), "schema_violation"),
    ("outcome without a join key", O("prediction_id"), "schema_violation"),
    ("outcome null join keys", O(prediction_id=None, entity_id=None), "schema_violation"),
    # Against the rules.
    ("unknown model", P(model="nope"), "unknown_model"),
    ("outcome unknown model", O(model="nope"), "unknown_model"),
    ("far future", P(predicted_at="2026-11-23T14:00:00Z"), "impossible_time"),
    ("far past", F(given_at="2001-01-01T00:00:00Z"), "impossible_time"),
    ("no time: the clock's, not NOW", F("given_at"), "impossible_time"),
    ("huge prediction", P(prediction=1e300), "out_of_range"),
    ("binary over 1", P(model="purchase", prediction=1.5), "out_of_range"),
    ("huge integer feature", P(features={"n": 10**400}), "out_of_range"),
    ("overflowing feature", edit(P(features={"n": 1.0}), b'"n":1.0', b'"n":1e400'), "out_of_range"),
    ("NaN feature", P(features={"n": math.nan}), "out_of_range"),
    ("infinite feature", P(features={"n": -math.inf}), "out_of_range"),
    ("long string feature", P(features={"s": "x" * 5000}), "out_of_range"),
    ("huge value", O(value=1e200), "out_of_range"),
    ("huge label", F(label=-1e200), "out_of_range"),
    ("too many features", P(features={f"f{i}": i for i in range(501)}), "too_many_features"),
]
# fmt: on


def corpus() -> list[Case]:
    out: list[Case] = [(name, kind, raw, want, BASE) for name, (kind, raw), want in CORPUS]
    return [
        *out,
        ("undeclared dropped", *P(), "accepted", DECLARED),
        ("undeclared refused", *P(), "undeclared_feature", REFUSING),
        ("declared only", *P(features={"a": 1, " bid ": 2}), "accepted", REFUSING),
    ]


@pytest.mark.parametrize(
    ("name", "kind", "raw", "expected", "s"),
    corpus(),
    ids=[case[0] for case in corpus()],
)
def test_the_corpus_gets_the_same_verdict_from_both(
    name: str, kind: str, raw: bytes, expected: str, s: Settings
) -> None:
    outcome, detail = assert_same_verdict(RawMessage(TOPIC[kind], 0, 0, None, raw), s)
    got = outcome if outcome == "accepted" else detail[0]
    assert got == expected, detail
    assert_fast_never_laxer(kind, raw)


def test_unknown_topics_are_refused_alike() -> None:
    outcome, (error_type, _) = assert_same_verdict(RawMessage("ol.nope", 0, 0, None, b"{}"))
    assert (outcome, error_type) == ("refused", "unknown_topic")


def test_default_times_are_the_decoders_clock() -> None:
    now = datetime.now(UTC)
    for kind, time_field in zip(("prediction", "outcome", "feedback"), TIMES, strict=True):
        outcome, event = assert_same_verdict(
            RawMessage(TOPIC[kind], 0, 0, None, body(kind, time_field)), BASE, now
        )
        assert outcome == "accepted" and time_field not in event.model_fields_set


def test_plain_valid_messages_take_the_fast_path() -> None:
    """Decoded by the fast path itself, not handed to decode."""
    over_msgspecs_bound = {"200 chars once stripped"}  # checked before stripping: decode's
    for name, kind, raw, expected, _ in corpus():
        if expected == "accepted" and name not in over_msgspecs_bound:
            assert from_wire(CONTRACTS[kind], raw) is not None, name  # type: ignore[index]


# --- generated messages -----------------------------------------------------------------

SPACES = [*WHITESPACE, "\x1c", "\x1f", "\u200b", "\u180e", "\ufeff"]
padded = st.builds(
    lambda a, b, c: a + b + c,
    st.text(st.sampled_from(SPACES), max_size=2),
    st.text(max_size=8),
    st.text(st.sampled_from(SPACES), max_size=2),
)
identifiers = (
    st.sampled_from(["p1", "ctr", "purchase", "v1", "", " ", "x" * 200, " " + "x" * 200, "x" * 201])
    | padded
    | st.integers()
    | st.none()
)


@st.composite
def times(draw: st.DrawFn) -> Any:
    """Mostly well-formed RFC 3339 near NOW, with every lax or broken variant mixed in."""
    when = NOW + timedelta(seconds=draw(st.integers(-(10**6), 10**4)))
    date = (
        when.strftime("%Y-%m-%d")
        if draw(st.booleans())
        else draw(st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"))
    )
    sep = draw(st.sampled_from("TTTt "))
    clock = when.strftime("%H:%M") + draw(st.sampled_from([when.strftime(":%S"), ":60", ""]))
    digits = draw(st.lists(st.sampled_from("0123456789"), max_size=12))
    fraction = "." + "".join(digits) if digits else draw(st.sampled_from(["", "."]))
    hours, minutes = draw(st.integers(0, 25)), draw(st.integers(0, 61))
    offset = draw(
        st.sampled_from(["Z", "z", ""])
        | st.builds(
            lambda s, colon: f"{s}{hours:02d}{colon}{minutes:02d}",
            st.sampled_from("+-"),
            st.sampled_from([":", ":", ""]),
        )
    )
    return date + sep + clock + fraction + offset


uuids = (
    st.uuids().map(str)
    | st.uuids().map(lambda u: str(u).upper())
    | st.uuids().map(lambda u: u.hex)
    | st.from_regex(r"\A[0-9a-fA-F-]{30,40}\Z")
    | st.integers()
)
numbers = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(-(10**20), 10**20)
    | st.sampled_from([0, 1, -0.0, 0.5, 1.5, 1e15, 1e16, 1e300, True, False, None, "0.4", 10**400])
)
feature_values = numbers | st.text(max_size=6) | padded | json_values
features = (
    st.dictionaries(
        padded | st.sampled_from(["a", "bid", "channel", "", " "]), feature_values, max_size=6
    )
    | json_values
)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "event_id": uuids,
    "schema_version": st.sampled_from([1, 2, 0, "1", 1.0, True, None]),
    "kind": st.sampled_from(["prediction", "outcome", "feedback", "", None]),
    "prediction_id": identifiers,
    "model": identifiers,
    "model_version": identifiers,
    "entity_id": identifiers,
    "predicted_class": identifiers,
    "outcome_kind": identifiers,
    "source": identifiers,
    "features": features,
    "prediction": numbers,
    "value": numbers,
    "label": numbers,
    "predicted_at": times(),
    "observed_at": times(),
    "given_at": times(),
    "colour": st.just("red"),
}


@st.composite
def near_the_edge(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid message with a few fields changed, dropped or added, encoded one way or
    another (compact or spaced, escaped or not)."""
    kind = draw(st.sampled_from(list(TOPIC)))
    message = base(kind)
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(sorted(FIELDS)))
        if name in message and draw(st.integers(0, 4)) == 0:
            del message[name]
        else:
            message[name] = draw(FIELDS[name])
    raw = encode(message, compact=draw(st.booleans()), ascii_only=draw(st.booleans()))
    return kind, raw


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=near_the_edge(), s=st.sampled_from([BASE, DECLARED, REFUSING]))
def test_messages_near_the_edge_get_the_same_verdict(case: tuple[str, bytes], s: Settings) -> None:
    kind, raw = case
    assert_same_verdict(RawMessage(TOPIC[kind], 0, 0, None, raw), s)
    assert_fast_never_laxer(kind, raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(list(TOPIC)),
    raw=st.binary(max_size=300)
    | json_values.map(lambda v: encode(v))
    | near_valid.map(lambda v: encode(v, compact=False)),
)
def test_any_bytes_get_the_same_verdict(kind: str, raw: bytes) -> None:
    assert_same_verdict(RawMessage(TOPIC[kind], 0, 0, None, raw))
    assert_fast_never_laxer(kind, raw)


# --- the fast path stays in step with the contracts -------------------------------------


def test_every_contract_field_is_decoded_by_the_fast_path() -> None:
    for contract, wire in WIRES.items():
        decoded = wire.decoder.decode(body(contract.model_fields["kind"].default))
        assert set(type(decoded).__struct_fields__) == set(contract.model_fields) == wire.names


class _UnknownKindOfField(PredictionMade):
    price: Decimal = Decimal(0)


class _LaxNumber(PredictionMade):
    score: float = 0.0  # not strict: "0.4" would pass pydantic and not msgspec


class _NewValidator(PredictionMade):
    @field_validator("model")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


@pytest.mark.parametrize("contract", [_UnknownKindOfField, _LaxNumber, _NewValidator])
def test_a_contract_change_the_fast_path_does_not_know_fails_loudly(contract: Any) -> None:
    with pytest.raises(TypeError, match="fast_decode"):
        wire_of(contract)


class _NewKnownField(PredictionMade):
    region: Identifier | None = None


def test_a_new_field_of_a_known_kind_needs_no_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(fast_module.WIRES, _NewKnownField, wire_of(_NewKnownField))
    for region in (" eu ", None):
        raw = body("prediction", region=region, compact=False)
        event = from_wire(_NewKnownField, raw)
        assert event is not None
        assert_same_event(event, _NewKnownField.model_validate_json(raw))


def test_whitespace_is_what_pydantic_strips() -> None:
    """Every code point, through pydantic itself: WHITESPACE is exactly its strip set."""

    class Stripped(BaseModel):
        texts: list[Identifier]

    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    got = Stripped(texts=[f"{c}x{c}" for c in chars]).texts
    stripped = {c for c, text in zip(chars, got, strict=True) if text == "x"}
    assert stripped == set(WHITESPACE)
    # And a message that may hold one always shows one of MAYBE_WHITESPACE's bytes.
    for c in WHITESPACE:
        assert set(c.encode()) & set(MAYBE_WHITESPACE), repr(c)


# --- the wire is strict, and Python producers are unaffected ----------------------------


def test_python_producers_still_build_events_from_objects() -> None:
    import numpy as np

    at = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    event = PredictionMade(
        event_id=uuid4(),
        prediction_id="p",
        model="ctr",
        model_version="v",
        prediction=np.float64(0.25),
        features={"a": 1, "b": "x", "c": True},
        predicted_at=at,
    )
    assert event.prediction == 0.25 and event.predicted_at == at
    assert PredictionMade.model_validate_json(event.to_bytes()) == event
    assert (
        fast_decode(RawMessage("ol.predictions", 0, 0, None, event.to_bytes()), BASE, NOW) == event
    )
    assert FeedbackGiven(event_id=EVENT_ID, prediction_id="p", label=1, given_at=at).label == 1.0
    assert (
        OutcomeObserved(event_id=UUID(EVENT_ID), entity_id="u", outcome_kind="k", value=0).value
        == 0.0
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"event_id": EVENT_ID.replace("-", "")},
        {"prediction": "0.4"},
        {"prediction": True},
        {"predicted_at": "2026-11-23 11:00:00Z"},
        {"predicted_at": 1_795_000_000},
        {"schema_version": "1"},
    ],
)
def test_python_producers_get_the_strict_wire_forms_too(changes: dict[str, Any]) -> None:
    fields: dict[str, Any] = {
        "prediction_id": "p",
        "model": "m",
        "model_version": "v",
        "prediction": 0.5,
    }
    with pytest.raises(ValidationError):
        PredictionMade(**(fields | changes))


# --- sort_batch uses the fast path ------------------------------------------------------


def test_sort_batch_decodes_with_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    handed: list[int] = []
    fast: list[bytes] = []

    def spy_from_wire(contract: Any, value: bytes) -> Any:
        fast.append(value)
        return from_wire(contract, value)

    def spy_decode_with(raw: RawMessage, checks: Any) -> IngestEvent:
        handed.append(raw.offset)
        return decode_with(raw, checks)

    monkeypatch.setattr(fast_module, "from_wire", spy_from_wire)
    monkeypatch.setattr(fast_module, "decode_with", spy_decode_with)
    raws = [
        RawMessage("ol.predictions", 0, 0, None, body("prediction")),
        RawMessage("ol.outcomes", 0, 1, None, body("outcome")),
        RawMessage("ol.feedback", 0, 2, None, body("feedback", label="1")),
    ]
    batch = sort_batch(raws, BASE, NOW)
    assert len(fast) == 3 and handed == [2]  # only the refused one went to decode
    assert batch.valid_count == 2 and [d.error_type for d in batch.dead] == ["schema_violation"]
