"""Uploader actor: stores result files (local dir or S3) with retries and backoff.

An Upload may carry its own `deadline` (a `time.monotonic()` instant): when it passes, the
upload under way (retries included) is cancelled and answered with UploadDeadlinePassed, a
transient StorageError, whether or not the asker still waits. The file is left in place.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oven import metrics
from oven.actors.runtime import ActorContext, AsyncActor
from oven.config import Settings
from oven.storage import Storage, StorageError, StoredObject, make_storage

log = logging.getLogger(__name__)

ATTEMPTS = 3  # quick tries per Upload; after them the job waits in upload_pending


@dataclass(frozen=True)
class Upload:
    job_id: str
    key: str
    path: Path
    content_type: str
    deadline: float | None = None  # time.monotonic() instant; see the module docstring


class UploadDeadlinePassed(StorageError):
    """The upload's own deadline passed and it was cancelled (transient: storage was slow)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=True)


@dataclass(frozen=True)
class Locate:
    """Where a stored key can be read: a local path, a URL, or neither."""

    key: str


@dataclass(frozen=True)
class Location:
    path: Path | None
    url: str | None


class Uploader(AsyncActor):
    def __init__(self, ctx: ActorContext, settings: Settings) -> None:
        super().__init__(ctx)
        self.settings = settings
        self.storage: Storage | None = None

    async def start_async(self) -> None:
        self.storage = make_storage(self.settings.storage, self.settings.server.data_dir)
        await self.storage.start()

    async def stop_async(self) -> None:
        if self.storage is not None:
            await self.storage.close()

    def receive(self, message: Any) -> Any:
        match message:
            case Upload():
                return self.defer(self._upload(message))
            case Locate(key=key):
                return self.defer(self._locate(key))
        return super().receive(message)

    async def _upload(self, upload: Upload) -> StoredObject:
        if upload.deadline is None:
            return await self._upload_with_retries(upload)
        started = time.monotonic()
        if upload.deadline > started:
            limit = asyncio.timeout_at(
                asyncio.get_running_loop().time() + upload.deadline - started)
            try:
                async with limit:
                    return await self._upload_with_retries(upload)
            except TimeoutError:
                if not limit.expired():
                    raise
        metrics.UPLOADS.labels(outcome="error").inc()
        message = (f"upload of job {upload.job_id} key={upload.key}: its deadline passed "
                   f"{time.monotonic() - started:.1f} s into the upload, which was cancelled")
        log.info("%s", message)
        raise UploadDeadlinePassed(message)

    async def _upload_with_retries(self, upload: Upload) -> StoredObject:
        assert self.storage is not None
        delay = 0.2
        for attempt in range(1, ATTEMPTS + 1):
            try:
                stored = await self.storage.put(upload.key, upload.path, upload.content_type)
                metrics.UPLOADS.labels(outcome="ok").inc()
                return stored
            except StorageError as exc:
                metrics.UPLOADS.labels(outcome="error").inc()
                if not exc.transient or attempt == ATTEMPTS:
                    raise
                log.warning(
                    "upload job=%s key=%s attempt %d failed: %s; retrying in %.1f s",
                    upload.job_id,
                    upload.key,
                    attempt,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay *= 2
        raise AssertionError("unreachable")

    async def _locate(self, key: str) -> Location:
        assert self.storage is not None
        return Location(path=self.storage.local_path(key), url=await self.storage.url_for(key))
