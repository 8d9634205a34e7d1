"""Commands operators send on the control topic, named in the imperative."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from schemas.base import AwareTime, Identifier, Message, utc_now


class Command(Message):
    """Every command names its issuer and reason; `event_id` doubles as the command id."""

    model: Identifier
    issued_by: Identifier
    reason: str = Field("", max_length=2000)
    issued_at: AwareTime = Field(default_factory=utc_now)
    signature: str | None = Field(None, description="HMAC-SHA256 of the unsigned body, hex")

    @property
    def command_id(self) -> str:
        return str(self.event_id)


class RetrainModel(Command):
    command: Literal["retrain"] = "retrain"


class ApproveVersion(Command):
    command: Literal["approve"] = "approve"
    version: Identifier


class RejectVersion(Command):
    command: Literal["reject"] = "reject"
    version: Identifier


class RollbackModel(Command):
    command: Literal["rollback"] = "rollback"


class PauseModel(Command):
    command: Literal["pause"] = "pause"


class ResumeModel(Command):
    command: Literal["resume"] = "resume"


ControlCommand = (
    RetrainModel | ApproveVersion | RejectVersion | RollbackModel | PauseModel | ResumeModel
)

command_adapter: TypeAdapter[ControlCommand] = TypeAdapter(
    Annotated[ControlCommand, Field(discriminator="command")]
)
