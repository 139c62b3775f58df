"""The input side of a session: a bounded buffer drained into the non-blocking PTY master.

Never a blocking write: a blocking write of a paste deadlocks after ~25-40 KB, because the kernel
holds only ~20 KB each way and nobody drains the echo while the writer is stuck. Here a write
goes as far as the master takes it; the rest waits in the buffer and is resumed when the loop
reports the master writable, while the session keeps reading output.

When the tty echoes (ECHO set: cooked `cat`, not bash's readline, not raw mode), writing is
paced too. N_TTY echoes from the input path into the output buffer; if that buffer is full
because its reader is a moment behind, it *discards* pending echo beyond ~3.8 KB, silently (seen
here: 3 MB pasted into cooked `cat` lost 1-3 KB of echo). So with echo on, at most ECHO_BURST
bytes are written per output drain: the session calls kick() each time it has read the master
empty, which leaves the kernel room for the burst's echo.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Callable

from ._errors import SessionEnded

ECHO_BURST = 512  # bytes per drain with echo on: 1-2 KiB still lost echo now and then here
# A burst whose echo never comes (the program turned echo off meanwhile) must not stall input.
_KICK_FALLBACK_S = 0.05


class InputPump:
    """At most `limit` bytes queued for `fd`; writers beyond that wait (backpressure)."""

    def __init__(
        self,
        fd: int,
        *,
        limit: int,
        check_open: Callable[[], None],
        echoing: Callable[[], bool],
    ) -> None:
        self._fd = fd
        self._limit = limit
        self._check_open = check_open  # raises when the session no longer takes input
        self._echoing = echoing  # whether the tty echoes input now (termios ECHO)
        self._burst_left = ECHO_BURST
        self._fallback: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self._chunks: deque[bytes] = deque()
        self._head = 0  # bytes of _chunks[0] already written
        self.buffered = 0
        self.bytes_in = 0
        self.backpressure_events = 0
        self._error: SessionEnded | None = None
        self._writing = False  # add_writer is registered
        self._room = asyncio.Event()
        # One writer at a time keeps concurrent writers' frames whole and in arrival order.
        self._lock = asyncio.Lock()

    def check(self) -> None:
        if self._error is not None:
            raise self._error
        self._check_open()

    async def write(self, data: bytes) -> None:
        self.check()
        if not data:
            return
        async with self._lock:
            if self.buffered + len(data) > self._limit:
                self.backpressure_events += 1
            while self.buffered + len(data) > self._limit:
                self._room.clear()
                await self._room.wait()
                self.check()
            self.check()
            self._chunks.append(bytes(data))
            self.buffered += len(data)
            self._flush()

    def kick(self) -> None:
        """The session read the master empty: the next echo burst has room."""
        self._burst_left = ECHO_BURST
        if self._fallback is not None:
            self._fallback.cancel()
            self._fallback = None
        if self._chunks and not self._writing:
            self._flush()

    def _flush(self) -> None:
        paced = bool(self._chunks) and self._echoing()
        while self._chunks:
            chunk = self._chunks[0]
            view = memoryview(chunk)[self._head :]
            if paced:
                if self._burst_left <= 0:
                    self._stop_writing()  # kick() resumes once the echo was read
                    if self._fallback is None:
                        self._fallback = self._loop.call_later(_KICK_FALLBACK_S, self.kick)
                    return
                view = view[: self._burst_left]
            try:
                written = os.write(self._fd, view)
            except BlockingIOError:
                if not self._writing:
                    # Resume once the child has read some input and the master takes more.
                    self._loop.add_writer(self._fd, self._flush)
                    self._writing = True
                return
            except OSError as error:  # EIO: the slave side is gone
                self.fail(f"the PTY refused input: {error}")
                return
            self.bytes_in += written
            self._burst_left -= written
            self.buffered -= written
            self._head += written
            if self._head == len(chunk):
                self._chunks.popleft()
                self._head = 0
            self._room.set()
        self._stop_writing()

    def fail(self, reason: str) -> None:
        """Drop what is queued; waiting and later writers raise SessionEnded with `reason`."""
        if self._error is not None:
            return
        undelivered = self.buffered
        if undelivered:
            reason += f"; {undelivered} bytes of input were not delivered"
        self._error = SessionEnded(reason, undelivered=undelivered)
        self._chunks.clear()
        self._head = 0
        self.buffered = 0
        self._stop_writing()
        if self._fallback is not None:
            self._fallback.cancel()
            self._fallback = None
        self._room.set()  # waiting writers wake up and raise

    def _stop_writing(self) -> None:
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False
