"""A viewer of a session's output: a position in the ring, acks, and a wake-up event.

The controlling client (at most one) is the one whose unacked output pauses the PTY; observers
only read. What next() returns is one of three messages, each carrying byte offsets so a
reconnecting client (SSE event id, WebSocket ack) can say where it stopped.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._errors import ClientDetached

if TYPE_CHECKING:
    from ._session import PtySession


@dataclass(frozen=True, slots=True)
class Output:
    """`data` is the session's output at [offset, offset + len(data))."""

    offset: int
    data: bytes

    @property
    def end(self) -> int:
        return self.offset + len(self.data)


@dataclass(frozen=True, slots=True)
class Resync:
    """The client fell off the ring: output before `offset` is lost to it; it continues there."""

    offset: int
    lost_bytes: int


@dataclass(frozen=True, slots=True)
class Closed:
    """All output was delivered and the session is over; `exit_status` as in wait_exit()."""

    offset: int
    exit_status: int | None


Message = Output | Resync | Closed


class PtyClient:
    """One reader of a session's output. Made by PtySession.attach(), never directly."""

    def __init__(
        self, session: PtySession, *, controlling: bool, position: int, internal: bool = False
    ) -> None:
        self._session = session
        self.controlling = controlling
        self.position = position  # next offset to deliver
        self.acked = position  # rendered up to here, as the client says
        self.internal = internal  # the recorder: not counted, never stalled out
        self.last_progress = time.monotonic()
        self.detach_reason: str | None = None
        self._wake = asyncio.Event()

    @property
    def attached(self) -> bool:
        return self.detach_reason is None

    @property
    def unacked(self) -> int:
        return self._session.ring_end - self.acked

    async def next(self, *, timeout: float) -> Message:
        """The next message; raises TimeoutError if none within `timeout` seconds and
        ClientDetached once detached (read the reason from the exception)."""
        async with asyncio.timeout(timeout):
            while True:
                if self.detach_reason is not None:
                    raise ClientDetached(f"client detached: {self.detach_reason}")
                # Clear before looking so a wake-up between the look and the wait is not lost.
                self._wake.clear()
                message = self._session._take(self)
                if message is not None:
                    return message
                await self._wake.wait()

    def ack(self, offset: int) -> None:
        """The client rendered the output up to `offset`; acks never go backwards."""
        if offset > self.position:
            raise ValueError(f"ack {offset} beyond what was delivered ({self.position})")
        if offset > self.acked:
            self.acked = offset
            self.last_progress = time.monotonic()
            self._session._acked(self)

    def detach(self) -> None:
        """Stop receiving output; idempotent. A controlling client's departure unpauses."""
        self._session._detach(self, "detached by the client")

    def _mark_detached(self, reason: str) -> None:
        if self.detach_reason is None:
            self.detach_reason = reason
            self._wake.set()

    def _wake_up(self) -> None:
        self._wake.set()

    def __repr__(self) -> str:
        role = "controller" if self.controlling else "observer"
        return f"<PtyClient {role} of {self._session.id} at {self.position} acked {self.acked}>"
