"""Errors of the PTY engine; all are PtyError so a route can answer them in one place."""

from __future__ import annotations


class PtyError(RuntimeError):
    """Something about a PTY session went wrong or was asked at the wrong time."""


class SpawnError(PtyError):
    """The child could not be started (missing command, bad cwd, no PTY)."""


class InvalidTransition(PtyError):
    """A session was asked to move between states in an order its lifecycle forbids."""


class SessionEnded(PtyError):
    """Input cannot be delivered: the child exited or the session was closed.

    `undelivered` counts the bytes accepted by write() that never reached the PTY.
    """

    def __init__(self, message: str, *, undelivered: int = 0) -> None:
        super().__init__(message)
        self.undelivered = undelivered


class ClientDetached(PtyError):
    """This client no longer receives output (detached, replaced, stalled or session closed)."""
