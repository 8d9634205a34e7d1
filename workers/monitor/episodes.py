"""Debouncing: one alert per episode, not one per evaluation. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class _State:
    active: bool = False
    clear_streak: int = 0


@dataclass
class EpisodeTracker:
    """An episode starts on the first breach and ends after ``clear_after`` clean checks.

    ``observe`` returns True exactly when a new episode starts: the moment to alert.
    """

    clear_after: int = 3
    _states: dict[tuple[str, ...], _State] = field(default_factory=dict)

    def observe(self, key: tuple[str, ...], breached: bool) -> bool:
        state = self._states.setdefault(key, _State())
        if breached:
            state.clear_streak = 0
            if not state.active:
                state.active = True
                return True
            return False
        if state.active:
            state.clear_streak += 1
            if state.clear_streak >= self.clear_after:
                state.active = False
                state.clear_streak = 0
        return False

    def forget(self, key: tuple[str, ...]) -> None:
        """Undo an episode's start whose alert could not be sent: the next breach raises
        it again instead of it being lost."""
        self._states.pop(key, None)

    def drop(self, prefix: tuple[str, ...]) -> None:
        """End every episode whose key starts with ``prefix``, silently (a fresh start)."""
        for key in [k for k in self._states if k[: len(prefix)] == prefix]:
            del self._states[key]

    def active(self, key: tuple[str, ...]) -> bool:
        state = self._states.get(key)
        return state is not None and state.active

    def active_keys(self) -> list[tuple[str, ...]]:
        return [k for k, s in self._states.items() if s.active]
