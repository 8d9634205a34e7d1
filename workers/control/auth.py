"""May this command act? Pure."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.commands import Command
from workers.control.signing import verify
from workers.settings import ControlConfig


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str


def authorize(command: Command, raw: bytes, cfg: ControlConfig, keys: list[bytes]) -> Verdict:
    """``raw`` is the message as received: the signature covers it, not a re-serialisation."""
    signed = verify(raw, keys)
    listed = command.issued_by in cfg.allowed_issuers
    why_sig = (
        "signature valid"
        if signed
        else ("unsigned" if not command.signature else "signature does not match any accepted key")
    )
    why_list = "issuer allowed" if listed else f"issuer {command.issued_by!r} not on the allow-list"
    ok = {
        "hmac": signed,
        "allow_list": listed,
        "either": signed or listed,
        "both": signed and listed,
    }[cfg.auth]
    detail = {"hmac": why_sig, "allow_list": why_list}.get(cfg.auth, f"{why_sig}; {why_list}")
    return Verdict(ok, detail)
