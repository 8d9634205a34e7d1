"""Write one JSON Schema file per contract into schemas/json, and the AsyncAPI document of
the topics into schemas/asyncapi.json (run: make schemas).

The schemas of what producers send (the three ingest events and the commands) state what
the worker checks on the wire, so a producer in any language validating with them gets
the worker's verdict: strict types, exact patterns for times, UUIDs and stripped text, the
worker's default limits as bounds. What only the worker can know (its models, its clock,
its database) is in each schema's description. The pydantic models stay the one
definition: a field's wire schema follows from its type alias (as in
workers/ingest/fast_decode.py), and a field or validator this module does not know is an
error, never a silent difference. tests/unit/test_schema_parity.py holds the files to the
worker's verdicts; tests/unit/test_contracts.py keeps them fresh.

Patterns are written for every common regular expression engine: ECMA-262 (with the "u"
flag, as JSON Schema asks), Python's re and Go's RE2: no look-around, counted repeats of
at most 1000, and characters outside ASCII as themselves (JSON escapes them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from annotated_types import Ge, Le, MaxLen
from pydantic import BaseModel, Strict
from pydantic.fields import FieldInfo

from schemas import (
    ChallengerAhead,
    Command,
    CommandResult,
    ControlCommand,
    DriftDetected,
    FeedbackGiven,
    LagMeasured,
    Message,
    ModelPromoted,
    ModelRegistered,
    ModelRejected,
    OutcomeObserved,
    PredictionMade,
    QualityAlertRaised,
    RetrainExhausted,
    RetrainStateChanged,
)
from schemas.base import WIRE_UUID, AwareTime, Features, Identifier, Number, WireUUID
from workers.ingest.fast_decode import WHITESPACE
from workers.settings import ControlConfig, LimitsConfig, TimeConfig, TopicsConfig

HERE = Path(__file__).resolve().parent
JSON_DIR = HERE / "json"
ASYNCAPI_FILE = HERE / "asyncapi.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
CONTROL_SCHEMA = "ControlCommand"  # the control topic's schema: any one command

COMMANDS: tuple[type[Command], ...] = get_args(ControlCommand)
WIRE_CONTRACTS: tuple[type[Message], ...] = (
    PredictionMade,
    OutcomeObserved,
    FeedbackGiven,
    *COMMANDS,
)
CONTRACTS: tuple[type[BaseModel], ...] = (
    *WIRE_CONTRACTS,
    DriftDetected,
    QualityAlertRaised,
    LagMeasured,
    ModelRegistered,
    ModelPromoted,
    ModelRejected,
    CommandResult,
    ChallengerAhead,
    RetrainStateChanged,
    RetrainExhausted,
)
# The worker's defaults: the bounds the schemas state, and the numbers their texts quote.
LIMITS = LimitsConfig()
TIMES = TimeConfig()
CONTROL = ControlConfig()
TOPICS = TopicsConfig()


def _plain(x: float) -> float | int:
    """1e15 as 1000000000000000, not 1000000000000000.0."""
    return int(x) if x.is_integer() else x


def _say(x: float) -> str:
    """A number for a description: 300, 31536000, 1e15."""
    if float(x).is_integer() and abs(x) < 1e9:
        return str(int(x))
    return f"{x:g}".replace("e+", "e")


BOUND = _plain(LIMITS.max_abs_number)
SKEW = TIMES.max_future_skew_seconds
AGE = TIMES.max_event_age_seconds
BEFORE = TIMES.max_outcome_before_prediction_seconds
COMMAND_AGE = CONTROL.max_command_age_seconds

# --- patterns -------------------------------------------------------------------------


def _char_class(chars: str) -> str:
    """``chars`` for a character class, runs of three or more as ranges."""
    codes = sorted(ord(c) for c in set(chars))
    parts, start = [], 0
    for i in range(1, len(codes) + 1):
        if i == len(codes) or codes[i] != codes[i - 1] + 1:
            run = codes[start:i]
            if len(run) >= 3:
                parts.append(f"{chr(run[0])}-{chr(run[-1])}")
            else:
                parts.extend(chr(c) for c in run)
            start = i
    return "".join(parts)


# pydantic strips WHITESPACE (Unicode White_Space) from every string of a contract
# (str_strip_whitespace) before checking its length; none of its characters is special
# inside a character class.
_WS = f"[{_char_class(WHITESPACE)}]"
_NOT_WS = f"[^{_char_class(WHITESPACE)}]"
_ANY = r"[\s\S]"  # any character, newlines included, in every engine


def _any_run(most: int) -> str:
    # Counted repeats of at most 1000: Go's regexp refuses larger ones.
    return "".join(f"{_ANY}{{0,{min(1000, most - done)}}}" for done in range(0, most, 1000))


def stripped_pattern(shortest: int, longest: int) -> str:
    """Text whose length once stripped of WHITESPACE is within [shortest, longest]: exact,
    where maxLength would count the padding the worker strips."""
    if shortest not in (0, 1) or longest < 1:
        raise ValueError(f"no pattern for lengths {shortest}..{longest}")
    core = _NOT_WS if longest == 1 else f"{_NOT_WS}(?:{_any_run(longest - 2)}{_NOT_WS})?"
    if shortest == 0:
        core = f"(?:{core})?"
    return f"^{_WS}*{core}{_WS}*$"


# RFC 3339 with seconds and an offset, as schemas.base.WIRE_TIME, and a real instant as
# pydantic parses it: years 0001-9999, days that exist (29 February in leap years
# only), hours 00-23, seconds 00-59 (no leap second), offsets up to 23:59.
_YEAR = "(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
_LEAP_YEAR = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_DATE = (
    f"(?:{_YEAR}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    f"|{_LEAP_YEAR}-02-29)"
)
_HOUR = "(?:[01][0-9]|2[0-3])"
_SIXTY = "[0-5][0-9]"
TIME_PATTERN = f"^{_DATE}[Tt]{_HOUR}:{_SIXTY}:{_SIXTY}(?:[.][0-9]+)?(?:[Zz]|[+-]{_HOUR}:{_SIXTY})$"
UUID_PATTERN = f"^{WIRE_UUID.pattern}$"

# --- each kind of field on the wire ---------------------------------------------------

_ID: Any = get_args(Identifier)[1]  # its StringConstraints
IDENTIFIER: dict[str, Any] = {
    "type": "string",
    "pattern": stripped_pattern(_ID.min_length, _ID.max_length),
}
ID_NOTE = (
    f"surrounding whitespace is stripped, then {_ID.min_length} to {_ID.max_length} characters"
)
NUMBER: dict[str, Any] = {"type": "number", "minimum": -BOUND, "maximum": BOUND}
NUMBER_NOTE = (
    f"a JSON number (an integer is one; not a string, not a boolean) within ±{_say(BOUND)}, "
    "the worker's default limits.max_abs_number"
)
TIME: dict[str, Any] = {
    "type": "string",
    "format": "date-time",
    "pattern": TIME_PATTERN,
    # Python's re (jsonschema) lets "$" match before a final newline; the worker does not.
    "not": {"pattern": "\n"},
}
TIME_NOTE = (
    "RFC 3339 with seconds and an offset (Z or ±hh:mm), a fraction optional, T and Z in "
    "either case; a date that exists"
)
UUID: dict[str, Any] = {
    "type": "string",
    "format": "uuid",
    "pattern": UUID_PATTERN,
    # Also the exact length: Python's re lets "$" match before a final newline.
    "minLength": 36,
    "maxLength": 36,
}
UUID_NOTE = "a UUID in its 8-4-4-4-12 form, hex digits in either case"
FEATURE_STRING: dict[str, Any] = {
    "type": "string",
    "pattern": stripped_pattern(0, LIMITS.max_string_length),
}
FEATURES: dict[str, Any] = {
    "type": "object",
    "maxProperties": LIMITS.max_features,
    "propertyNames": IDENTIFIER,
    "additionalProperties": {
        # The contract's float | int | str | bool | None: no arrays, no objects.
        "anyOf": [
            NUMBER,
            {**NUMBER, "type": "integer"},
            FEATURE_STRING,
            {"type": "boolean"},
            {"type": "null"},
        ]
    },
}
FEATURES_NOTE = (
    f"a flat object of at most {LIMITS.max_features} features (limits.max_features); "
    f"names are identifiers; values are numbers within ±{_say(BOUND)} (limits.max_abs_number), "
    f"strings of at most {LIMITS.max_string_length} characters once stripped "
    "(limits.max_string_length), booleans or null"
)


def _shape(annotation: Any) -> tuple[Any, list[Any]]:
    """A type alias as pydantic sees it once it is a field: bare type plus constraints."""
    field = FieldInfo.from_annotation(annotation)
    return field.annotation, field.metadata


KINDS: tuple[tuple[tuple[Any, list[Any]], dict[str, Any], str], ...] = (
    (_shape(WireUUID), UUID, UUID_NOTE),
    (_shape(AwareTime), TIME, TIME_NOTE),
    (_shape(Number), NUMBER, NUMBER_NOTE),
    (_shape(Identifier), IDENTIFIER, ID_NOTE),
    (_shape(Identifier | None), {"anyOf": [IDENTIFIER, {"type": "null"}]}, ID_NOTE),
    (_shape(Features), FEATURES, FEATURES_NOTE),
)


def _wire_field(
    owner: type[BaseModel], name: str, field: FieldInfo
) -> tuple[dict[str, Any], str] | None:
    """The wire schema of one field and a note on it; None keeps pydantic's own (exact for
    literals and optional free text)."""
    shape = (field.annotation, field.metadata)
    for known, schema, note in KINDS:
        if shape == known:
            return schema, note
    annotation, meta = shape
    if get_origin(annotation) is Literal and not meta:
        return None
    if annotation is int and Strict() in meta and all(type(m) in (Strict, Ge, Le) for m in meta):
        # A strict integer: JSON Schema holds 1.0 equal to 1, the worker does not (described).
        low: Any = next((m.ge for m in meta if isinstance(m, Ge)), None)
        high: Any = next((m.le for m in meta if isinstance(m, Le)), None)
        if low is not None and low == high:
            return {"type": "integer", "const": low}, f"the integer {low}, written {low}"
        bounds = {"minimum": low, "maximum": high}
        kept = {k: v for k, v in bounds.items() if v is not None}
        return {"type": "integer", **kept}, "an integer, written without a fraction"
    if annotation is str and all(isinstance(m, MaxLen) for m in meta) and len(meta) == 1:
        longest = meta[0].max_length
        note = f"surrounding whitespace is stripped, then at most {longest} characters"
        return {"type": "string", "pattern": stripped_pattern(0, longest)}, note
    if annotation == str | None and not meta:
        return None
    raise TypeError(
        f"schemas/export.py cannot state {owner.__name__}.{name} ({annotation!r}, {meta!r}) "
        "on the wire: teach it this kind of field, so the schema stays the worker's verdict"
    )


# The contracts' model validators, and the schema that states each.
MODEL_RULES: dict[tuple[type[BaseModel], str], dict[str, Any]] = {
    (OutcomeObserved, "_has_join_key"): {
        "anyOf": [
            {"required": [key], "properties": {key: {"type": "string"}}}
            for key in ("prediction_id", "entity_id")
        ]
    },
}

# --- what only the worker knows, for the descriptions ---------------------------------

STRIPPED = (
    "Text is stripped of surrounding whitespace (Unicode White_Space) before it is checked "
    "and stored: the patterns bound the length of what remains."
)
DEFAULT_LIMITS = (
    f"Bounds are the worker's default limits (limits.max_abs_number {_say(BOUND)}, "
    f"limits.max_features {LIMITS.max_features}, limits.max_string_length "
    f"{LIMITS.max_string_length}); a worker configured otherwise applies its own."
)
VERSION_AS_WRITTEN = (
    "schema_version is written 1: the worker refuses 1.0, which JSON Schema cannot tell from 1."
)


def _time_window(field: str) -> str:
    return (
        f"{field} at most {_say(SKEW)} s after the worker's clock (time.max_future_skew_seconds) "
        f"and at most {_say(AGE)} s before it (time.max_event_age_seconds), else "
        f"impossible_time; a missing {field} becomes the time the worker receives the event"
    )


SIZE = (
    f"the message is a UTF-8 JSON object of at most {LIMITS.max_message_bytes} bytes "
    "(limits.max_message_bytes, 1 MiB), else too_large, unread"
)
EVENT_ID = (
    "event_id: a fresh UUID for each event, and the same one when that event is sent again: "
    "the worker stores an event once per event_id, so a retry is harmless"
)
UNSTORABLE = "text with a NUL character (U+0000) cannot be stored in PostgreSQL: unstorable"
HEADERS = "Kafka headers are ignored."

WORKER_ONLY: dict[type[Message], tuple[str, list[str], list[str]]] = {
    # contract: (Kafka key, rules only the worker checks, what JSON Schema cannot say)
    PredictionMade: (
        "prediction_id",
        [
            "model names a configured model, else unknown_model",
            "for a binary model, prediction is a probability in [0, 1], else out_of_range",
            _time_window("predicted_at"),
            "features the model does not declare are dropped before storage, or the event "
            "is refused as undeclared_feature with limits.undeclared_features = refuse; a "
            "model that declares no features keeps them all",
            EVENT_ID,
            "a prediction_id already stored with another event_id is refused as "
            "conflicting_duplicate (prediction ids are unique)",
            SIZE,
            UNSTORABLE,
        ],
        [
            VERSION_AS_WRITTEN,
            "Feature names equal once stripped are one feature: the worker keeps the last "
            "value and counts it once toward limits.max_features, where this schema checks "
            "and counts each. Send each name once.",
        ],
    ),
    OutcomeObserved: (
        "prediction_id, or entity_id when there is none",
        [
            "model, if given, names a configured model, else unknown_model",
            _time_window("observed_at"),
            f"an outcome stamped more than {_say(BEFORE)} s before its prediction "
            "(time.max_outcome_before_prediction_seconds) is refused as impossible_time, "
            "in either arrival order",
            EVENT_ID,
            SIZE,
            UNSTORABLE,
        ],
        [VERSION_AS_WRITTEN],
    ),
    FeedbackGiven: (
        "prediction_id",
        [_time_window("given_at"), EVENT_ID, SIZE, UNSTORABLE],
        [VERSION_AS_WRITTEN],
    ),
}
COMMAND_RULES = [
    "the command is signed (HMAC-SHA256 over the RFC 8785 canonical JSON of the object as "
    "sent, without signature) or its issuer allowed, as control.auth says, else unauthorized",
    f"issued_at at most {_say(COMMAND_AGE)} s before the worker's clock "
    f"(control.max_command_age_seconds) and at most {_say(SKEW)} s after it, else stale_command",
    "model names a configured model, else unknown_model",
    "event_id is the command id: a command whose event_id was handled already is answered "
    "with the stored result and not done again",
]
COMMAND_CANNOT = [
    VERSION_AS_WRITTEN,
    "event_id is required here, but the worker makes one up for a command without it, and "
    "then cannot recognise its redelivery: always send one.",
]


def describe(first: str, topic: str, key: str, rules: list[str], notes: list[str]) -> str:
    """``first`` (what the message is), then where it goes and what only the worker checks."""
    return "\n".join(
        [
            first,
            "",
            f"Topic {topic}; Kafka key: {key}, as UTF-8. {HEADERS}",
            "This schema checks what the worker checks on every message. Only the worker checks:",
            *(f"- {rule}{';' if i < len(rules) else '.'}" for i, rule in enumerate(rules, 1)),
            STRIPPED,
            *notes,
        ]
    )


# TopicsConfig's field for each ingest topic, and the contract it carries.
INGEST_TOPICS: dict[str, type[Message]] = {
    "predictions": PredictionMade,
    "outcomes": OutcomeObserved,
    "feedback": FeedbackGiven,
}


def describe_contract(model: type[Message], first: str) -> str:
    if model in WORKER_ONLY:
        key, rules, cannot = WORKER_ONLY[model]
        field = next(f for f, contract in INGEST_TOPICS.items() if contract is model)
        return describe(first, getattr(TOPICS, field), key, rules, [DEFAULT_LIMITS, *cannot])
    return describe(first, TOPICS.control, "model", COMMAND_RULES, COMMAND_CANNOT)


# --- rendering --------------------------------------------------------------------------


def wire_schema(model: type[Message]) -> dict[str, Any]:
    """The JSON Schema of what the worker accepts for ``model`` on the wire."""
    schema = model.model_json_schema()
    properties = schema["properties"]
    for name, field in model.model_fields.items():
        wire = _wire_field(model, name, field)
        if wire is None:
            continue
        kind, note = wire
        given = properties[name]
        described = "; ".join(d for d in (given.get("description"), note) if d)
        keep = {k: given[k] for k in ("title", "default") if k in given}
        properties[name] = {**kind, **keep, "description": described}
    for name, validator in model.__pydantic_decorators__.model_validators.items():
        rule = MODEL_RULES.get((model, name))
        if rule is None or validator.info.mode != "after":
            raise TypeError(f"schemas/export.py cannot state {model.__name__}.{name}")
        schema.update(rule)
    if model.__pydantic_decorators__.field_validators:
        raise TypeError(f"schemas/export.py cannot state {model.__name__}'s field validators")
    if issubclass(model, Command):
        # The control topic tells commands apart by it: a default does not reach the wire.
        schema["required"].append("command")
    first = schema.get("description") or (
        f"The `{model.model_fields['command'].default}` command. {Command.__doc__}"
    )
    schema["description"] = describe_contract(model, first)
    return schema


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    if model in WIRE_CONTRACTS:
        return wire_schema(model)  # type: ignore[arg-type]
    return model.model_json_schema()


def control_schema() -> dict[str, Any]:
    """The control topic's schema: exactly one of the commands, told apart by `command`."""
    return {
        "title": CONTROL_SCHEMA,
        "description": describe(
            "Any one command, told apart by `command`.",
            TOPICS.control,
            "model",
            COMMAND_RULES,
            COMMAND_CANNOT,
        ),
        "oneOf": [{"$ref": f"#/$defs/{c.__name__}"} for c in COMMANDS],
        "$defs": {c.__name__: schema_of(c) for c in COMMANDS},
    }


def _file(name: str, schema: dict[str, Any]) -> str:
    schema = {**schema, "$schema": DRAFT, "$id": f"outcomeloop/{name}.schema.json"}
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def render(model: type[BaseModel]) -> str:
    return _file(model.__name__, schema_of(model))


def expected_files() -> dict[str, str]:
    files = {f"{model.__name__}.schema.json": render(model) for model in CONTRACTS}
    files[f"{CONTROL_SCHEMA}.schema.json"] = _file(CONTROL_SCHEMA, control_schema())
    return files


# --- the AsyncAPI document ---------------------------------------------------------------

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING = "0.5.0"
# What the worker publishes: TopicsConfig field -> (messages, Kafka key, summary).
OUTPUTS: dict[str, tuple[tuple[type[Message], ...], str, str]] = {
    "drift": (
        (DriftDetected, QualityAlertRaised, RetrainExhausted),
        "model",
        "Drift and quality alerts, one per episode, and retrains that gave up.",
    ),
    "lag": ((LagMeasured,), "the worker's app_id (its consumer group)", "Lag reports."),
    "models": (
        (ModelRegistered, ModelPromoted, ModelRejected, ChallengerAhead, RetrainStateChanged),
        "model",
        "Model versions: registered, promoted (serving clients reload), rejected; "
        "challengers ahead; the retrain loop's state.",
    ),
    "control_results": (
        (CommandResult,),
        "command_id",
        "What became of each command: accepted, then done, refused or failed.",
    ),
}
DLQ_HEADERS = {
    "ol.dlq.reason": "why it was refused, on one line",
    "ol.dlq.error_type": "invalid_json, schema_violation, unknown_model, impossible_time, …",
    "ol.dlq.topic": "the topic it came from",
    "ol.dlq.partition": "its partition there",
    "ol.dlq.offset": "its offset there",
    "ol.dlq.original_bytes": "the size of the original message",
    "ol.dlq.sha256": "the sha256 of the whole original message, hex",
    "ol.dlq.truncated": "true when the value holds only the first bytes of the original",
}
EXAMPLES: dict[type[Message], dict[str, Any]] = {
    PredictionMade: {
        "event_id": "5b0f6d1c-8e59-4a47-9a8e-0f7f5c9d1a01",
        "prediction_id": "ad-991",
        "model": "ctr",
        "model_version": "v3",
        "features": {"channel": "search", "bid": 1.2},
        "prediction": 0.043,
        "predicted_at": "2026-11-23T12:00:00Z",
    },
    OutcomeObserved: {
        "event_id": "0c7e3a52-3f0b-4f42-9d1e-2b8a3c4d5e02",
        "prediction_id": "ad-991",
        "outcome_kind": "measured",
        "value": 0.051,
        "observed_at": "2026-11-23T12:20:00Z",
    },
    FeedbackGiven: {
        "event_id": "7d1e2f30-4a5b-4c6d-8e9f-a0b1c2d3e4f5",
        "prediction_id": "ad-991",
        "label": 0.05,
        "source": "audit",
        "given_at": "2026-11-23T13:00:00Z",
    },
}


def _hoist(schema: dict[str, Any], into: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its $defs moved into components/schemas and its references after
    them: inside the document, "#" is the document."""
    for name, sub in schema.pop("$defs", {}).items():
        into[name] = _hoist(sub, into)
    text = json.dumps(schema).replace('"#/$defs/', '"#/components/schemas/')
    hoisted: dict[str, Any] = json.loads(text)
    return hoisted


def _message(
    model: type[BaseModel], key: str, schemas: dict[str, Any], first: str | None = None
) -> dict[str, Any]:
    name = model.__name__
    schemas[name] = _hoist(schema_of(model), schemas)
    message: dict[str, Any] = {
        "name": name,
        "title": name,
        "summary": first or (model.__doc__ or name).strip().splitlines()[0],
        "contentType": "application/json",
        "payload": {"$ref": f"#/components/schemas/{name}"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": key},
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }
    if model in WIRE_CONTRACTS:
        message["description"] = schemas[name]["description"]
        message["externalDocs"] = {"url": f"json/{name}.schema.json"}
    if model in EXAMPLES:
        message["examples"] = [{"name": "example", "payload": EXAMPLES[model]}]
    return message


def _dead_letter() -> dict[str, Any]:
    return {
        "name": "DeadLetter",
        "title": "DeadLetter",
        "summary": "A message the worker could not use, exactly as it was sent.",
        "description": (
            "The value is the original message's bytes (its first "
            f"{LIMITS.dead_letter_payload_bytes}, limits.dead_letter_payload_bytes), the key "
            "its key; the headers say where it came from and why it was refused (Kafka "
            "Connect's convention). Each is also a row of the dead_letters table."
        ),
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "properties": {
                name: {"type": "string", "description": text} for name, text in DLQ_HEADERS.items()
            },
        },
        "payload": {"description": "the original bytes, which may not be JSON at all"},
        "bindings": {
            "kafka": {
                "key": {"description": "the original message's key"},
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }


def asyncapi() -> dict[str, Any]:
    """The topics, their messages and keys, from the same models as the JSON Schemas."""
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}

    def channel(field: str, action: str, summary: str, names: list[str]) -> None:
        address = getattr(TOPICS, field)
        channels[field] = {
            "address": address,
            "title": address,
            "description": f"{summary} Its name is set by topics.{field}.",
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in names},
            "bindings": {"kafka": {"topic": address, "bindingVersion": KAFKA_BINDING}},
        }
        verb = "Consumed" if action == "receive" else "Published"
        operations[f"{action}_{field}"] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{field}"},
            "summary": f"{verb} by the worker.",
            "messages": [{"$ref": f"#/channels/{field}/messages/{n}"} for n in names],
        }

    for field, model in INGEST_TOPICS.items():
        messages[model.__name__] = _message(model, WORKER_ONLY[model][0], schemas)
        channel(field, "receive", f"{model.__name__} events from producers.", [model.__name__])
    for command in COMMANDS:
        messages[command.__name__] = _message(command, "model", schemas)
    channel(
        "control",
        "receive",
        "Signed commands from operators; each is answered on the results topic.",
        [c.__name__ for c in COMMANDS],
    )
    for field, (models, key, summary) in OUTPUTS.items():
        for model in models:
            messages[model.__name__] = _message(model, key, schemas)
        channel(field, "send", summary, [m.__name__ for m in models])
    messages["DeadLetter"] = _dead_letter()
    channel("dlq", "send", "Dead letters: what the worker could not use, and why.", ["DeadLetter"])
    version = Message.model_fields["schema_version"].default
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Outcome Loop",
            "version": str(version),
            "description": (
                "The topics of Outcome Loop's worker: what producers send (predictions, "
                "outcomes, feedback, commands) and what the worker publishes. Payloads are "
                "the JSON Schemas of schemas/json (written with this document by `make "
                "schemas` from the pydantic contracts in schemas/); each producer message "
                "says what only the worker checks. Topic names are the defaults."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render_asyncapi() -> str:
    return json.dumps(asyncapi(), indent=2) + "\n"


def main() -> None:
    JSON_DIR.mkdir(exist_ok=True)
    expected = expected_files()
    for stale in JSON_DIR.glob("*.schema.json"):
        if stale.name not in expected:
            stale.unlink()
    for name, text in expected.items():
        (JSON_DIR / name).write_text(text)
    ASYNCAPI_FILE.write_text(render_asyncapi())
    print(f"wrote {len(expected)} schema files to {JSON_DIR} and {ASYNCAPI_FILE.name}")


if __name__ == "__main__":
    main()
