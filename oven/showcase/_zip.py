"""A ZIP archive written member by member into chunks a response can send as they are made.

The standard library's zipfile does the format: handed a file object that cannot seek, it
writes each member's sizes and CRC in a data descriptor after the data instead of seeking back
to the header, which is exactly what a streamed response needs. Nothing here holds more than
the chunk being written (plus the central directory: ~100 bytes a member).
"""

from __future__ import annotations

import enum
import time
import zipfile
from typing import IO


class _Sink:
    """Write-only and unseekable on purpose: zipfile then never seeks back into sent bytes."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


class ZipState(enum.Enum):
    IDLE = "idle"  # between members
    MEMBER = "member"  # a member is open for writing
    FINISHED = "finished"  # the central directory is written


class ZipStream:
    """Each call returns the archive bytes it produced; send them in order.

    Members are stored, not deflated: they are PNGs, already compressed.
    """

    def __init__(self) -> None:
        self._sink = _Sink()
        self._zip = zipfile.ZipFile(self._sink, mode="w", compression=zipfile.ZIP_STORED)
        self._member: IO[bytes] | None = None
        self.state = ZipState.IDLE
        self.names: list[str] = []

    def open_member(self, name: str, *, size: int | None = None) -> bytes:
        self._require(ZipState.IDLE, "open a member")
        info = zipfile.ZipInfo(name, date_time=time.gmtime()[:6])
        info.compress_type = zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        if size is not None:
            info.file_size = size  # lets zipfile choose ZIP64 up front for a huge member
        self._member = self._zip.open(info, mode="w")
        self.state = ZipState.MEMBER
        self.names.append(name)
        return self._sink.take()

    def write(self, data: bytes) -> bytes:
        self._require(ZipState.MEMBER, "write")
        assert self._member is not None
        self._member.write(data)
        return self._sink.take()

    def close_member(self) -> bytes:
        self._require(ZipState.MEMBER, "close a member")
        assert self._member is not None
        self._member.close()
        self._member = None
        self.state = ZipState.IDLE
        return self._sink.take()

    def finish(self) -> bytes:
        self._require(ZipState.IDLE, "finish")
        self._zip.close()
        self.state = ZipState.FINISHED
        return self._sink.take()

    def _require(self, state: ZipState, action: str) -> None:
        if self.state is not state:
            raise RuntimeError(f"cannot {action} while the archive is {self.state.value}")
