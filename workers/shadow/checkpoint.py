"""Challenger state to bytes and back. River models are Python objects with no safe
format of their own, so the bytes are a pickle written by the worker and signed with an
HMAC: a row changed by anything else is refused before it is ever unpickled."""

from __future__ import annotations

import hashlib
import hmac
import pickle
from typing import Any

from workers.errors import OutcomeLoopError


class CheckpointError(OutcomeLoopError):
    """A stored checkpoint failed its integrity check."""


def dump(state: dict[str, Any], key: bytes) -> tuple[bytes, str]:
    blob = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    return blob, hmac.new(key, blob, hashlib.sha256).hexdigest()


def load(blob: bytes, digest: str, key: bytes) -> dict[str, Any]:
    expected = hmac.new(key, blob, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, digest):
        raise CheckpointError("checkpoint signature mismatch: refusing to load it")
    state: dict[str, Any] = pickle.loads(blob)
    return state
