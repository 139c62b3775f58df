"""A bake's lifecycle: the same words in the store, the API, webhooks and metrics."""

from __future__ import annotations

import enum


class InvalidBakeTransition(Exception):
    def __init__(self, current: BakeState, wanted: BakeState) -> None:
        super().__init__(f"a bake cannot go from {current.value!r} to {wanted.value!r}")
        self.current = current
        self.wanted = wanted


class BakeState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return not _ALLOWED[self]

    def check_transition(self, wanted: BakeState) -> None:
        """Raise InvalidBakeTransition unless `self -> wanted` is a step of the lifecycle."""
        if wanted not in _ALLOWED[self]:
            raise InvalidBakeTransition(self, wanted)


# QUEUED -> FAILED: stopped, or its instance gone, before it got an encoder slot.
_ALLOWED: dict[BakeState, frozenset[BakeState]] = {
    BakeState.QUEUED: frozenset({BakeState.RUNNING, BakeState.FAILED}),
    BakeState.RUNNING: frozenset({BakeState.COMPLETE, BakeState.FAILED}),
    BakeState.COMPLETE: frozenset(),
    BakeState.FAILED: frozenset(),
}
