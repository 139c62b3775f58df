"""What every storage backend promises: the protocol, its result, its errors, key rules."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

# S3's own limit on an object key; local paths are far below any filesystem limit with it.
MAX_KEY_BYTES = 1024


class StorageError(Exception):
    """A storage operation failed.

    `transient` tells the Uploader whether retrying can help: True for an endpoint that is down,
    slow or throttling; False for a missing bucket, denied access or bad credentials, which need a
    person to change something.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class StorageUnavailable(StorageError):
    """The backend cannot serve requests right now (raised by operations and by `check()`)."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message, transient=transient)


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What `put` stored: the caller's key, its size in bytes, and the URL to fetch it, if any."""

    key: str
    size: int
    url: str | None


@runtime_checkable
class Storage(Protocol):
    """A place to keep results. Async; one instance lives on one event loop."""

    async def start(self) -> None: ...

    async def put(self, key: str, path: Path, content_type: str) -> StoredObject: ...

    async def url_for(self, key: str) -> str | None: ...

    def local_path(self, key: str) -> Path | None: ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None: ...

    async def check(self) -> None: ...

    async def close(self) -> None: ...


class StorageState(enum.Enum):
    NEW = "new"
    STARTED = "started"
    CLOSED = "closed"


class Lifecycle:
    """NEW -> STARTED -> CLOSED, with loud errors on anything else."""

    def __init__(self, name: str) -> None:
        self._name = name
        self.state = StorageState.NEW

    def started(self) -> None:
        if self.state is not StorageState.NEW:
            raise RuntimeError(f"Cannot start {self._name} in state {self.state.value!r}.")
        self.state = StorageState.STARTED

    def require_started(self, action: str) -> None:
        if self.state is StorageState.NEW:
            raise RuntimeError(f'Cannot call "{action}" on {self._name} before start().')
        if self.state is StorageState.CLOSED:
            raise RuntimeError(f'Cannot call "{action}" on {self._name} once it is closed.')

    def closed(self) -> None:
        self.state = StorageState.CLOSED


def validate_key(key: str) -> str:
    """Return `key` if it is a safe relative object key, else raise ValueError naming the rule."""
    if not isinstance(key, str) or not key:
        raise ValueError("storage key must be a non-empty string")
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in key):
        raise ValueError(f"storage key {key!r} contains NUL or control characters")
    if key.startswith("/") or "\\" in key:
        raise ValueError(f"storage key {key!r} must be relative and use '/' separators")
    segments = key.split("/")
    if any(seg in ("", ".", "..") for seg in segments):
        raise ValueError(f"storage key {key!r} has an empty, '.' or '..' segment")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"storage key is longer than {MAX_KEY_BYTES} bytes")
    return key
