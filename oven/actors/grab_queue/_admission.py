"""Admission: a Submit becomes a cached answer, an attachment to the job already holding its
capture key (single-flight), a refusal (queue full, piece frozen), or a new `queued` job.

The order is the cheapest refusal first: in a burst most submissions meet a full queue, and
each store round trip is GIL time the HTTP loop waits for. A new job is written to the store
before anyone hears of it; the store's unique active capture key is what makes single-flight
hold across instances.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from oven import metrics
from oven.actors.grab_queue._book import Book
from oven.actors.grab_queue._callbacks import Callbacks
from oven.actors.grab_queue._messages import (
    CANCEL_DIGEST,
    PieceFrozen,
    QueueFull,
    Submit,
    Submitted,
    new_cancel_token,
)
from oven.actors.grab_queue._runner import TaskOwner
from oven.actors.store import StoreClient
from oven.config import Settings
from oven.errors import Refusal
from oven.grabs import capture_key
from oven.jobs import JobState
from oven.store import CaptureCached, CaptureKeyBusy, JobRecord

log = logging.getLogger(__name__)


class QueueTooSlow(QueueFull):
    """The queue is under `max_queued`, but its estimated wait is longer than a job's deadline."""

    def __init__(self, queued: int, wait_s: float, deadline_s: float) -> None:
        Refusal.__init__(
            self, f"the grab queue is full: {queued} jobs waiting would take about {wait_s:.0f} s,"
                  f" longer than a job's deadline ({deadline_s:g} s); retry later",
            retry_after_s=max(1.0, wait_s - deadline_s))


@dataclass
class _KeyLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class Admission:
    def __init__(self, book: Book, store: StoreClient, callbacks: Callbacks, tasks: TaskOwner,
                 *, kick: Callable[[], None], settings: Settings) -> None:
        self.book = book
        self.store = store
        self.callbacks = callbacks
        self.tasks = tasks
        self.kick = kick  # a job was admitted: claim it if a page slot is free
        self.settings = settings
        self._admitting: dict[str, _KeyLock] = {}

    async def submit(self, msg: Submit) -> Submitted:
        key = capture_key(msg.request, msg.target_url, self.settings.pieces.render_version)
        # Admission awaits the store; without a per-key lock, identical requests arriving here
        # together would all go to the store (which would still admit only one of them).
        lock = self._admitting.setdefault(key, _KeyLock())
        lock.users += 1
        try:
            async with lock.lock:
                return await self._admit(msg, key)
        finally:
            lock.users -= 1
            if lock.users == 0:
                del self._admitting[key]

    async def _admit(self, msg: Submit, key: str) -> Submitted:
        grab, settings, book = msg.request, self.settings, self.book
        cached = await self.store.cache_get(key)
        if cached is not None:
            metrics.CACHE.labels(outcome="hit").inc()
            return self._answer_from_cache(msg, key, cached)
        metrics.CACHE.labels(outcome="miss").inc()
        queued = len(book.queued)
        if queued >= settings.queue.max_queued:
            raise QueueFull(queued, book.eta(queued))
        wait = book.wait_over_deadline()
        if wait is not None:  # refused while the client can still go elsewhere
            raise QueueTooSlow(queued, wait, settings.queue.deadline_s)
        if grab.piece is not None:
            until = await self.store.frozen_until(grab.piece)
            if until is not None and until > time.time():
                raise PieceFrozen(grab.piece, until)
        cancel_token, digest = new_cancel_token()
        request = grab.model_dump(mode="json") | {CANCEL_DIGEST: digest}
        record = JobRecord.queued(id=uuid.uuid4().hex, capture_key=key, lane=grab.lane,
                                  request=request, deadline_s=settings.queue.deadline_s,
                                  piece=grab.piece, target_url=msg.target_url)
        try:
            await self.store.insert_job(record)  # persisted before anyone hears of the job
        except CaptureCached as done:
            # The key's holder completed (here or elsewhere) between the look-up and the insert.
            # Counted once, as the miss it was at the look-up.
            return self._answer_from_cache(msg, key, done.result)
        except CaptureKeyBusy as busy:
            # Single-flight: the key is queued or running (here or in another instance).
            holder = busy.holder
            if grab.callback_url is not None:
                self.tasks.spawn(self.callbacks.when_final(holder.id, grab.callback_url))
            return Submitted(book.view_record(holder), cached=False, attached=True)
        book.admitted(record)
        log.info("admitted job=%s piece=%s format=%s lane=%s", record.id, grab.subject,
                 grab.format.value, grab.lane.value)
        self.kick()
        return Submitted(book.view_record(record), cached=False, attached=False,
                         cancel_token=cancel_token)

    def _answer_from_cache(self, msg: Submit, key: str, cached: dict[str, Any]) -> Submitted:
        view = {"id": None, "state": JobState.COMPLETE.value, "capture_key": key,
                "result": cached, "cached": True}
        if msg.request.callback_url is not None:
            self.callbacks.send(msg.request.callback_url, None, JobState.COMPLETE, cached, None)
        return Submitted(view, cached=True, attached=False)
