"""HMAC signatures on commands, and where the key comes from."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from schemas.commands import Command
from workers.settings import Settings

KEY_FILE = "control.key"


def canonical(command: Command) -> bytes:
    """The signed bytes: the command without its signature, keys sorted, no spaces."""
    body = command.model_dump(mode="json", exclude={"signature"})
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign(command: Command, key: bytes) -> Command:
    digest = hmac.new(key, canonical(command), hashlib.sha256).hexdigest()
    return command.model_copy(update={"signature": digest})


def verify(command: Command, keys: list[bytes]) -> bool:
    if not command.signature:
        return False
    body = canonical(command)
    return any(
        hmac.compare_digest(hmac.new(k, body, hashlib.sha256).hexdigest(), command.signature)
        for k in keys
    )


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
