"""PtySession: one terminal session, its child process and its streams."""

from oven.actors.pty_session._actor import (
    Ack,
    Attach,
    CloseSession,
    Detach,
    Next,
    PtySessionActor,
    Resize,
    SessionInfo,
    Write,
)

__all__ = [
    "Ack",
    "Attach",
    "CloseSession",
    "Detach",
    "Next",
    "PtySessionActor",
    "Resize",
    "SessionInfo",
    "Write",
]
