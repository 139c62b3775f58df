"""Results in a local directory, written atomically; oven serves them itself."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import psutil

from oven.storage._base import (
    Lifecycle,
    StorageError,
    StorageUnavailable,
    StoredObject,
    validate_key,
)

logger = logging.getLogger(__name__)

# Errors a person must fix (permissions, read-only mount); everything else may clear by itself.
_PERMANENT_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR}
_TEMP_PREFIX = ".oven-tmp-"
# A temp file names the process writing it (.oven-tmp-<pid>-...): one whose writer is gone is
# a write a kill cut short, and is removed at the next start. One without a pid (written
# before names carried it) is removed once an hour old.
_TEMP_PID = re.compile(re.escape(_TEMP_PREFIX) + r"(\d+)-")
_UNNAMED_TEMP_AGE_S = 3600.0


def _temp_prefix() -> str:
    return f"{_TEMP_PREFIX}{os.getpid()}-"


class LocalStorage:
    """A directory of result files keyed by relative path. `url_for` is None: oven serves them."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._lifecycle = Lifecycle("LocalStorage")
        self._closing = threading.Event()
        self._sweeper: threading.Thread | None = None
        self.swept_temps = 0  # temp files of writes cut short, removed at start

    @property
    def root(self) -> Path:
        return self._root

    async def start(self) -> None:
        self._lifecycle.started()
        # Disk calls go to a thread: this runs on the Uploader's event loop, which must keep moving.
        await asyncio.to_thread(self._root.mkdir, parents=True, exist_ok=True)
        self._root = self._root.resolve()
        logger.info("local storage started", extra={"root": str(self._root)})
        # A walk of a large result tree takes a while: in the background, stopped by close().
        self._sweeper = threading.Thread(target=self._sweep_stale_temps, name="local-temp-sweep",
                                         daemon=True)
        self._sweeper.start()

    async def put(self, key: str, path: Path, content_type: str) -> StoredObject:
        target = self._target(key)
        self._lifecycle.require_started("put")
        size = await asyncio.to_thread(self._write_atomically, Path(path), target)
        logger.debug("stored %s (%d bytes)", key, size, extra={"key": key})
        return StoredObject(key=key, size=size, url=None)

    async def url_for(self, key: str) -> str | None:
        validate_key(key)
        return None

    def local_path(self, key: str) -> Path | None:
        return self._target(key)

    async def exists(self, key: str) -> bool:
        target = self._target(key)
        self._lifecycle.require_started("exists")
        return await asyncio.to_thread(target.is_file)

    async def delete(self, key: str) -> None:
        target = self._target(key)
        self._lifecycle.require_started("delete")
        try:
            await asyncio.to_thread(target.unlink, missing_ok=True)
        except OSError as exc:
            raise _translate(exc, f"delete {target}") from exc

    async def check(self) -> None:
        self._lifecycle.require_started("check")
        try:
            await asyncio.to_thread(self._probe_writable)
        except OSError as exc:
            raise StorageUnavailable(
                f"local storage dir {self._root} is not writable ({exc.strerror or exc}); "
                "check that it exists, its permissions and free disk space",
                transient=exc.errno not in _PERMANENT_ERRNOS,
            ) from exc

    async def close(self) -> None:
        self._lifecycle.closed()
        self._closing.set()
        if self._sweeper is not None:
            await asyncio.to_thread(self._sweeper.join, 5.0)

    def _sweep_stale_temps(self) -> None:
        """Remove the temp files of writes a kill cut short (their writer is gone)."""
        for folder, _, names in os.walk(self._root):
            if self._closing.is_set():
                return
            for name in names:
                if name.startswith(_TEMP_PREFIX) and self._is_stale_temp(Path(folder, name)):
                    with contextlib.suppress(OSError):
                        os.unlink(Path(folder, name))
                        self.swept_temps += 1
                        logger.info("removed %s, a write cut short", Path(folder, name))

    @staticmethod
    def _is_stale_temp(path: Path) -> bool:
        found = _TEMP_PID.match(path.name)
        if found is None:
            try:
                return time.time() - path.stat().st_mtime > _UNNAMED_TEMP_AGE_S
            except OSError:
                return False
        return not psutil.pid_exists(int(found.group(1)))

    def _target(self, key: str) -> Path:
        validate_key(key)
        target = self._root / key
        # resolve() follows symlinks, so a link inside the root pointing out is caught here too.
        if not target.resolve().is_relative_to(self._root.resolve()):
            raise ValueError(f"storage key {key!r} resolves outside the storage root")
        return target

    def _write_atomically(self, source: Path, target: Path) -> int:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(source, "rb") as src:
                # Same directory as the target so os.replace is a rename on one filesystem.
                fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(), dir=target.parent)
                try:
                    with os.fdopen(fd, "wb") as dst:
                        shutil.copyfileobj(src, dst, length=1024 * 1024)
                        dst.flush()
                        # fsync before the rename, or a crash can leave a complete name with
                        # missing bytes.
                        os.fsync(dst.fileno())
                        size = dst.tell()
                    os.replace(tmp_name, target)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp_name)
                    raise
            self._fsync_dir(target.parent)
        except FileNotFoundError as exc:
            if exc.filename == str(source):
                raise StorageError(f"source file {source} does not exist") from exc
            raise _translate(exc, f"write {target}") from exc
        except OSError as exc:
            raise _translate(exc, f"write {target}") from exc
        return size

    @staticmethod
    def _fsync_dir(directory: Path) -> None:
        # The rename itself is durable only once the directory entry is on disk.
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _probe_writable(self) -> None:
        self._root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(prefix=_temp_prefix(), dir=self._root) as probe:
            probe.write(b"ok")
            probe.flush()


def _translate(exc: OSError, action: str) -> StorageError:
    message = f"local storage could not {action}: {exc.strerror or exc}"
    if exc.errno in _PERMANENT_ERRNOS:
        return StorageError(message, transient=False)
    return StorageUnavailable(message, transient=True)
