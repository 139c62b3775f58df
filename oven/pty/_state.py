"""A session's lifecycle as explicit states; the same words appear in metrics and the API."""

from __future__ import annotations

from enum import StrEnum

from ._errors import InvalidTransition


class SessionState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    EXITED = "exited"  # the child is gone; output may still be drained by clients
    CLOSED = "closed"  # the fd is closed and every process of the session reaped

    def check_transition(self, new: SessionState) -> None:
        """Raise InvalidTransition unless `self -> new` is a step of the lifecycle."""
        if new not in _ALLOWED[self]:
            raise InvalidTransition(f"a PTY session cannot go from {self} to {new}")


_ALLOWED: dict[SessionState, frozenset[SessionState]] = {
    SessionState.STARTING: frozenset({SessionState.RUNNING, SessionState.CLOSED}),
    SessionState.RUNNING: frozenset({SessionState.EXITED, SessionState.CLOSED}),
    SessionState.EXITED: frozenset({SessionState.CLOSED}),
    SessionState.CLOSED: frozenset(),
}
