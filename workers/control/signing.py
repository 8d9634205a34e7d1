"""HMAC signatures on commands, and where the key comes from.

A command's signature is HMAC-SHA256, hex, over the RFC 8785 (JCS) canonical JSON of the
command object exactly as sent, without its ``signature`` member. Any language with a JCS
library can sign (README: "Signing a command"); the worker verifies the bytes it received,
not its own re-serialisation, so fields a producer leaves to their defaults are fine.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import rfc8785

from schemas.commands import Command
from workers.settings import Settings

KEY_FILE = "control.key"


def canonical(body: Mapping[str, Any]) -> bytes:
    """The signed bytes: JCS of the command object without its signature."""
    return rfc8785.dumps({k: v for k, v in body.items() if k != "signature"})


def signature(body: Mapping[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical(body), hashlib.sha256).hexdigest()


def sign(command: Command, key: bytes) -> Command:
    """The command with its signature over what `to_bytes()` will send."""
    body = command.model_dump(mode="json", exclude={"signature"})
    return command.model_copy(update={"signature": signature(body, key)})


def verify(raw: bytes, keys: list[bytes]) -> bool:
    """Whether the message as received carries a signature by one of ``keys``."""
    try:
        body = json.loads(raw)
    except ValueError:
        return False
    given = body.get("signature") if isinstance(body, dict) else None
    if not isinstance(given, str) or not given:
        return False
    try:
        expected = [signature(body, k) for k in keys]
    except (rfc8785.CanonicalizationError, ValueError, TypeError):
        return False
    return any(hmac.compare_digest(e, given) for e in expected)


def signing_key(settings: Settings) -> bytes:
    """OL_CONTROL_SECRET, or for local use a key file made once under the data folder (the
    worker and the CLI on one machine then agree without any set-up)."""
    if settings.control_secret is not None:
        return settings.control_secret.get_secret_value().encode()
    path = settings.data_dir / KEY_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return Path(path).read_text().strip().encode()


def accepted_keys(settings: Settings) -> list[bytes]:
    keys = [signing_key(settings)]
    if settings.control_previous_secret is not None:
        keys.append(settings.control_previous_secret.get_secret_value().encode())
    return keys
