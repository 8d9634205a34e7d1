"""The hot-path decoder: msgspec parses and type-checks a message against structs generated
from the pydantic contracts, then ``decode``'s own rules apply. Pure.

Its verdicts are ``decode``'s, by construction where it can be:

- the structs are generated from the contracts' fields at import; a field, constraint,
  validator or setting this module does not know how to check is an import error, never
  a silent difference;
- the checks before parsing and the rules after it are ``decode``'s (``Checks``);
- a message it does not plainly accept is handed to ``decode``, which refuses it with its
  usual reason and error type. Refusals are rare and may be slow; acceptance is the hot
  path. (msgspec also stops at a message's first problem where pydantic parses all of it
  first, so broken JSON after a schema error would otherwise get another error type.)

tests/unit/test_decode_parity.py holds both to the same verdict on every message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal, get_args, get_origin
from uuid import UUID

import msgspec
from annotated_types import Ge, Le
from asyncpg.pgproto.pgproto import UUID as _C_UUID
from pydantic import BaseModel, Strict
from pydantic.fields import FieldInfo

from schemas.base import (
    WIRE_TIME,
    AwareTime,
    Features,
    FeatureValue,
    Identifier,
    Number,
    WireUUID,
)
from schemas.events import IngestEvent, OutcomeObserved
from workers.ingest.decode import CONTRACTS, Checks, RawMessage, decode_with
from workers.settings import Settings

# What pydantic strips for str_strip_whitespace: Rust's char::is_whitespace (Unicode
# White_Space). Python's str.strip() would also strip U+001C..U+001F, which pydantic keeps.
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# Bytes without which no string in a message can hold WHITESPACE: the ASCII ones, the
# backslash of a JSON escape, and the UTF-8 lead bytes of the others (U+0080..U+00BF,
# U+1000..U+3FFF). Compact JSON has none of them, so it has nothing to strip.
MAYBE_WHITESPACE = b"\t\n\x0b\x0c\r \\\xc2\xe1\xe2\xe3"

# Identifiers' bounds, read from the contract's own definition.
_ID_CONSTRAINTS: Any = get_args(Identifier)[1]
ID_MIN: int = _ID_CONSTRAINTS.min_length
ID_MAX: int = _ID_CONSTRAINTS.max_length
# msgspec checks the bounds before stripping, the cheap common case: an identifier within
# them only once stripped is left to ``decode``, which accepts it.
WireId = Annotated[str, msgspec.Meta(min_length=ID_MIN, max_length=ID_MAX)]


class _NotPlainlyValid(Exception):
    """This message is for ``decode`` to judge (and almost always refuse)."""


# --- what pydantic does after parsing, for each kind of field ---------------------------


def parse_wire_uuid(text: str) -> UUID:
    """A UUID in its 8-4-4-4-12 form (WIRE_UUID). asyncpg's C UUID (a ``uuid.UUID``, equal
    and hashing alike) parses in a third of msgspec's time and prints nine times faster;
    it skips dashes anywhere, so their places are checked here, and it refuses anything
    but 32 hex digits besides."""
    if len(text) != 36 or text[8] != "-" or text[13] != "-" or text[18] != "-" or text[23] != "-":
        raise _NotPlainlyValid
    try:
        return _C_UUID(text)
    except ValueError:
        raise _NotPlainlyValid from None


def parse_wire_time(text: str) -> datetime:
    """An RFC 3339 time (WIRE_TIME) as pydantic reads it: the offset kept, digits past the
    microsecond dropped (``fromisoformat`` truncates too; msgspec would round)."""
    if WIRE_TIME.fullmatch(text) is None:
        raise _NotPlainlyValid
    try:
        return datetime.fromisoformat(text.upper())  # it wants "T" and "Z" upper-case
    except ValueError:  # a day, an hour or an offset out of range
        raise _NotPlainlyValid from None


def _identifier(text: str) -> str:
    stripped = text.strip(WHITESPACE)
    if len(stripped) < ID_MIN:
        raise _NotPlainlyValid
    return stripped


def _features(features: dict[str, FeatureValue]) -> dict[str, FeatureValue]:
    out: dict[str, FeatureValue] = {}
    for key, value in features.items():
        # Later keys win, as in pydantic, when two differ only by whitespace.
        out[_identifier(key)] = value.strip(WHITESPACE) if isinstance(value, str) else value
    return out


class Strip(Enum):
    """Fields whose strings pydantic strips (str_strip_whitespace)."""

    NONE = "none"
    IDENTIFIER = "identifier"
    FEATURES = "features"


Convert = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of contract field: msgspec's type for it, and what pydantic does after."""

    wire_type: Any
    convert: Convert | None = None  # msgspec's value to pydantic's
    strip: Strip = Strip.NONE


def _shape(annotation: Any) -> tuple[Any, list[Any]]:
    """A type alias as pydantic sees it once it is a field: bare type plus constraints."""
    field = FieldInfo.from_annotation(annotation)
    return field.annotation, field.metadata


# Every kind of field the fast path can check, keyed by the contract's own type alias.
VOCABULARY: tuple[tuple[tuple[Any, list[Any]], Kind], ...] = (
    (_shape(WireUUID), Kind(str, parse_wire_uuid)),
    (_shape(AwareTime), Kind(str, parse_wire_time)),
    # msgspec floats take integers, refuse strings and booleans, and are never NaN or
    # ±inf: JSON has no literal for them and msgspec refuses numbers that overflow.
    (_shape(Number), Kind(float)),
    (_shape(Identifier), Kind(WireId, strip=Strip.IDENTIFIER)),
    (_shape(Identifier | None), Kind(WireId | None, strip=Strip.IDENTIFIER)),
    (_shape(Features), Kind(dict[WireId, FeatureValue], strip=Strip.FEATURES)),
)


def kind_of(owner: type[BaseModel], name: str, field: FieldInfo) -> Kind:
    """How the fast path checks one contract field, or TypeError if it cannot."""
    shape = (field.annotation, field.metadata)
    for known, kind in VOCABULARY:
        if shape == known:
            return kind
    annotation, meta = shape
    if get_origin(annotation) is Literal and not meta:
        return Kind(annotation)
    if annotation is int and Strict() in meta and all(type(m) in (Strict, Ge, Le) for m in meta):
        bounds: dict[str, Any] = {}
        for m in meta:
            if isinstance(m, Ge):
                bounds["ge"] = m.ge
            elif isinstance(m, Le):
                bounds["le"] = m.le
        return Kind(Annotated[int, msgspec.Meta(**bounds)])
    raise TypeError(
        f"fast_decode cannot check {owner.__name__}.{name} ({annotation!r}, {meta!r}): teach "
        "workers/ingest/fast_decode.py this kind of field, so it stays in step with decode"
    )


def _join_key(values: dict[str, Any]) -> bool:
    return values["prediction_id"] is not None or values["entity_id"] is not None


# The contracts' model validators, and the fast check that stands for each.
MODEL_VALIDATORS: dict[tuple[type[BaseModel], str], Callable[[dict[str, Any]], bool]] = {
    (OutcomeObserved, "_has_join_key"): _join_key,
}
# The model settings the code above implements; any other one is an import error.
KNOWN_CONFIG = {"frozen": True, "extra": "forbid", "str_strip_whitespace": True}
NO_EFFECT_ON_VALIDATION = {"json_schema_extra", "title"}


@dataclass(frozen=True, slots=True)
class Wire:
    """One contract as the fast path sees it, its fields grouped by what they need."""

    contract: type[IngestEvent]
    decoder: msgspec.json.Decoder[Any]
    names: frozenset[str]  # model_fields_set when every field is given
    identifiers: tuple[str, ...]
    feature_maps: tuple[str, ...]
    converts: tuple[tuple[str, Convert], ...]
    defaults: tuple[tuple[str, Callable[[], Any]], ...]  # the contract's, for absent fields
    after: tuple[Callable[[dict[str, Any]], bool], ...]


def _default(field: FieldInfo) -> Callable[[], Any]:
    if field.default_factory is not None:
        return field.default_factory  # type: ignore[return-value]
    value = field.default
    if value is not None and type(value) not in (str, int, float, bool):
        raise TypeError(f"fast_decode knows only immutable defaults, not {value!r}")
    return lambda: value


def wire_of(contract: type[IngestEvent]) -> Wire:
    """Generate the fast path's view of ``contract``, or TypeError if it cannot check it."""
    config = {k: v for k, v in contract.model_config.items() if k not in NO_EFFECT_ON_VALIDATION}
    if config != KNOWN_CONFIG:
        raise TypeError(f"fast_decode does not know {contract.__name__}'s config {config!r}")
    decorators = contract.__pydantic_decorators__
    after = []
    for name, validator in decorators.model_validators.items():
        check = MODEL_VALIDATORS.get((contract, name))
        if check is None or validator.info.mode != "after":
            raise TypeError(f"fast_decode does not know {contract.__name__}.{name}")
        after.append(check)
    if (
        decorators.validators
        or decorators.field_validators
        or decorators.root_validators
        or decorators.computed_fields
        or contract.__private_attributes__
        or contract.__pydantic_post_init__
    ):
        raise TypeError(f"fast_decode does not know all of {contract.__name__}'s behaviour")
    struct_fields: list[tuple[str, Any, Any]] = []
    identifiers, feature_maps, converts, defaults = [], [], [], []
    for name, field in contract.model_fields.items():
        if field.alias not in (None, name) or field.validation_alias is not None:
            raise TypeError(f"fast_decode does not know aliases ({contract.__name__}.{name})")
        kind = kind_of(contract, name, field)
        if kind.strip is Strip.IDENTIFIER:
            identifiers.append(name)
        elif kind.strip is Strip.FEATURES:
            feature_maps.append(name)
        if kind.convert is not None:
            converts.append((name, kind.convert))
        # event_id is required on the wire, though Python producers get a default.
        if field.is_required() or name == "event_id":
            struct_fields.append((name, kind.wire_type, msgspec.NODEFAULT))
        else:
            # UNSET rather than the default: an absent field is not in model_fields_set.
            struct_fields.append((name, kind.wire_type | msgspec.UnsetType, msgspec.UNSET))
            defaults.append((name, _default(field)))
    struct = msgspec.defstruct(
        f"{contract.__name__}Wire",
        struct_fields,
        module=__name__,
        kw_only=True,
        forbid_unknown_fields=True,
        gc=False,  # flat: no reference cycles to collect
    )
    return Wire(
        contract=contract,
        decoder=msgspec.json.Decoder(struct),
        names=frozenset(contract.model_fields),
        identifiers=tuple(identifiers),
        feature_maps=tuple(feature_maps),
        converts=tuple(converts),
        defaults=tuple(defaults),
        after=tuple(after),
    )


WIRES: dict[type[IngestEvent], Wire] = {c: wire_of(c) for c in CONTRACTS.values()}


# --- decoding ---------------------------------------------------------------------------

_UNSET = msgspec.UNSET
_asdict = msgspec.structs.asdict
_setattr = object.__setattr__


def from_wire(contract: type[IngestEvent], value: bytes) -> IngestEvent | None:
    """What ``contract.model_validate_json(value)`` returns, if ``value`` plainly meets the
    contract (event_id included); None when ``decode`` must judge."""
    wire = WIRES[contract]
    try:
        values = _asdict(wire.decoder.decode(value))
    # Broken JSON (invalid UTF-8 is a UnicodeDecodeError) or a schema violation: decode
    # says which, and why.
    except (msgspec.MsgspecError, ValueError):
        return None
    try:
        if len(value.translate(None, MAYBE_WHITESPACE)) != len(value):
            _strip(wire, values)
        for name, convert in wire.converts:
            got = values[name]
            if got is not _UNSET:
                values[name] = convert(got)
    except _NotPlainlyValid:
        return None
    given = set(wire.names)
    for name, default in wire.defaults:
        if values[name] is _UNSET:
            values[name] = default()
            given.discard(name)
    for check in wire.after:
        if not check(values):
            return None
    # What model_construct does, without its per-field Python loop (3x slower): every
    # value is already what validation would have made of it.
    event = contract.__new__(contract)
    _setattr(event, "__dict__", values)
    _setattr(event, "__pydantic_fields_set__", given)
    _setattr(event, "__pydantic_extra__", None)
    _setattr(event, "__pydantic_private__", None)
    return event


def _strip(wire: Wire, values: dict[str, Any]) -> None:
    """str_strip_whitespace, for a message that may have whitespace to strip."""
    for name in wire.identifiers:
        got = values[name]
        if got.__class__ is str:
            values[name] = _identifier(got)
    for name in wire.feature_maps:
        got = values[name]
        if got is not _UNSET:
            values[name] = _features(got)


class FastDecoder:
    """``decode``'s verdicts at a fraction of its cost, for a batch decoded with the same
    settings and clock: the event, or ``RejectedInput`` with the same error type."""

    __slots__ = ("checks",)

    def __init__(self, settings: Settings, now: datetime) -> None:
        self.checks = Checks.at(settings, now)

    def __call__(self, raw: RawMessage) -> IngestEvent:
        contract = self.checks.contract_of(raw)
        event = from_wire(contract, raw.value)
        if event is None:
            return decode_with(raw, self.checks)
        return self.checks.check_event(event)


def fast_decode(raw: RawMessage, settings: Settings, now: datetime) -> IngestEvent:
    """``decode``'s verdict on ``raw``, the fast way."""
    return FastDecoder(settings, now)(raw)
