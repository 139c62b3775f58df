"""asciinema v2 recording of a session, written by a task so the PTY never waits on disk.

The recorder is an internal observer of the ring rather than a queue of its own: memory stays
bounded by the ring whatever the disk does. The price is that a disk slower than the child makes
the recorder fall off the ring; it then records a marker and logs a warning instead of stalling.
Event times are when the recorder read the output (within milliseconds, unless the disk lags).
"""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import time
from pathlib import Path
from typing import IO

from ._client import Closed, Output, PtyClient, Resync
from ._errors import ClientDetached

log = logging.getLogger(__name__)

_IDLE_TIMEOUT_S = 3600.0  # only bounds one wait; the loop ends on Closed or detach


class CastRecorder:
    """Copies a session's output into `path` as an asciinema v2 .cast file."""

    def __init__(self, path: Path, client: PtyClient, *, cols: int, rows: int, title: str) -> None:
        self.path = path
        self._client = client
        self._started = time.monotonic()
        # Output chunks split UTF-8 sequences; the decoder carries the tail to the next event.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._header = {
            "version": 2,
            "width": cols,
            "height": rows,
            "timestamp": int(time.time()),
            "title": title,
            "env": {"TERM": "xterm-256color"},
        }
        self._pending: list[str] = []
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"record {title}")

    def resize(self, cols: int, rows: int) -> None:
        self._event("r", f"{cols}x{rows}")

    def _event(self, kind: str, text: str) -> None:
        stamp = round(time.monotonic() - self._started, 6)
        self._pending.append(json.dumps([stamp, kind, text], ensure_ascii=False) + "\n")

    async def _run(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Opening and writing run in a thread: a slow or stuck disk must not block the loop.
        file = await asyncio.to_thread(self.path.open, "w", encoding="utf-8")
        try:
            await asyncio.to_thread(file.write, json.dumps(self._header) + "\n")
            while await self._collect():
                await self._flush(file)
            self._flush_decoder()
            await self._flush(file)
        except Exception:
            log.exception("recording %s failed; the session goes on unrecorded", self.path)
        finally:
            self._client.detach()
            await asyncio.to_thread(file.close)

    async def _collect(self) -> bool:
        """Wait for output, then take everything available; False once the session is over."""
        first = True
        while True:
            try:
                message = await self._client.next(timeout=_IDLE_TIMEOUT_S if first else 0)
            except TimeoutError:
                if first:
                    continue
                return True
            except ClientDetached:
                return False
            first = False
            if isinstance(message, Output):
                text = self._decoder.decode(message.data)
                if text:
                    self._event("o", text)
                self._client.ack(message.end)
            elif isinstance(message, Resync):
                log.warning(
                    "recording %s lost %d bytes (disk slower than the child)",
                    self.path,
                    message.lost_bytes,
                )
                self._event("o", f"\r\n[oven: {message.lost_bytes} bytes not recorded]\r\n")
            elif isinstance(message, Closed):
                return False

    def _flush_decoder(self) -> None:
        tail = self._decoder.decode(b"", final=True)
        if tail:
            self._event("o", tail)

    async def _flush(self, file: IO[str]) -> None:
        if not self._pending:
            return
        lines, self._pending = "".join(self._pending), []
        await asyncio.to_thread(_write_all, file, lines)


def _write_all(file: IO[str], text: str) -> None:
    file.write(text)
    file.flush()
