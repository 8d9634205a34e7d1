"""Shared shape of every event and command on Outcome Loop's topics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
# Features are a flat mapping of scalars: nested objects would make "as of prediction time"
# snapshots and drift statistics ambiguous.
FeatureValue = float | int | str | bool | None
Features = dict[Identifier, FeatureValue]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _event_id_required_on_the_wire(schema: dict[str, Any]) -> None:
    # Python producers get an id when they build an event; producers writing JSON by hand
    # must send one, or a redelivery could not be told from a new event.
    schema.setdefault("required", []).insert(0, "event_id")


class Message(BaseModel):
    """Frozen, strict base: unknown fields are errors so producer typos never pass silently."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra=_event_id_required_on_the_wire,
    )

    event_id: UUID = Field(
        default_factory=uuid4, description="unique id; redelivery is keyed on it"
    )
    schema_version: int = Field(1, ge=1, le=1, description="contract version of this message")

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


AwareTime = Annotated[AwareDatetime, Field(description="tz-aware ISO 8601 time")]
