"""One error hierarchy. Foreign errors are wrapped once, at the edge, with context."""

from __future__ import annotations


class OutcomeLoopError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(OutcomeLoopError):
    """Settings or config files are inconsistent."""


class InfraError(OutcomeLoopError):
    """The broker or PostgreSQL could not be started, reached or stopped."""


class MigrationError(OutcomeLoopError):
    """A migration file is malformed or failed to apply."""


class RejectedInput(OutcomeLoopError):
    """A message that cannot be processed; it goes to the dead-letter topic with this reason."""

    def __init__(self, reason: str, *, error_type: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type


class RegistryError(OutcomeLoopError):
    """A registry action that cannot be done as asked (unknown version, nothing to roll back)."""
