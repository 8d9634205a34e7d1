"""Operator actions from the dashboard: the same signed commands the CLI sends.

An action needs the operator token (OL_DASHBOARD_TOKEN) as ``Authorization: Bearer …``.
Without a configured token the dashboard is read-only and every action is refused with
403. With one, the command is built, signed with the control key, published on
``ol.control`` and its result awaited, exactly as ``outcomeloop approve`` does.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from schemas import CommandResult
from schemas.commands import ApproveVersion, Command, RejectVersion, RollbackModel
from workers.control.client import send_command
from workers.settings import Settings

ISSUER = "dashboard"
READ_ONLY = (
    "this dashboard is read-only: the worker has no operator token (set OL_DASHBOARD_TOKEN "
    "on the worker to allow approve, reject and rollback from here)"
)
NEEDS_VERSION = frozenset({"approve", "reject"})
MAX_NAME = 100

Sender = Callable[..., Awaitable[list[CommandResult]]]


@dataclass(frozen=True)
class Answer:
    """An HTTP status and the JSON body to send."""

    status: int
    body: dict[str, Any]


def refusal(settings: Settings, authorization: str | None) -> Answer | None:
    """None when the request carries the operator token; else the answer to send."""
    if settings.dashboard_token is None:
        return Answer(403, {"error": READ_ONLY})
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return Answer(401, {"error": "send the operator token as 'Authorization: Bearer <token>'"})
    expected = settings.dashboard_token.get_secret_value().encode()
    if not hmac.compare_digest(given.strip().encode(), expected):
        return Answer(401, {"error": "wrong operator token"})
    return None


def build_command(action: str, model: str, body: Mapping[str, Any]) -> Command:
    """The command for `action` on `model`; ValueError says what is wrong with the body."""
    issued_by = body.get("issued_by") or ISSUER
    reason = body.get("reason") or "from the dashboard"
    if not isinstance(issued_by, str) or not isinstance(reason, str):
        raise ValueError("'issued_by' and 'reason' must be strings")
    issued_by = issued_by.strip()
    if len(issued_by) > MAX_NAME or not issued_by.isprintable():
        raise ValueError(f"'issued_by' must be printable and at most {MAX_NAME} characters")
    if issued_by != ISSUER:
        issued_by = f"{issued_by} (dashboard)"
    version = body.get("version")
    try:
        if action in NEEDS_VERSION:
            if not isinstance(version, str) or not version.strip():
                raise ValueError(f"{action} needs the candidate's 'version'")
            kind = ApproveVersion if action == "approve" else RejectVersion
            return kind(model=model, version=version, issued_by=issued_by, reason=reason)
        if action == "rollback":
            return RollbackModel(model=model, issued_by=issued_by, reason=reason)
    except ValidationError as exc:
        raise ValueError(f"invalid {action}: {exc.errors()[0]['msg']}") from exc
    raise ValueError(f"unknown action {action!r}: approve, reject or rollback")


HTTP_STATUS = {"done": 200, "refused": 409, "failed": 502, "accepted": 202}


async def perform(settings: Settings, command: Command, *, send: Sender = send_command) -> Answer:
    """Send the signed command and wait for its final result (or the control timeout)."""
    wait = settings.control.result_timeout_seconds
    results = await send(settings, command, wait_seconds=wait)
    if not results:
        return Answer(
            504,
            {
                "command_id": command.command_id,
                "status": "no_answer",
                "detail": f"no result within {wait:g}s: is a loop worker running?",
            },
        )
    last = results[-1]
    body = last.model_dump(mode="json")
    body["ok"] = last.status == "done"
    return Answer(HTTP_STATUS.get(last.status, 502), body)
