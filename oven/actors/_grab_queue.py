"""GrabQueue actor: admission, lanes, single-flight, result cache, dispatch, retries, freezing.

Messages and errors live in _grab_messages (re-exported here for callers).

Message flow: HTTP/CLI → Submit → (cache hit | attach to the running job | persist, enqueue)
→ dispatch when a page slot is free → Pipeline.run (BrowserPool → Encoder → Uploader) → Store
marks the job final → every waiter is answered. All state lives on the actor's loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from oven import _metrics as metrics
from oven._jobs import JobState
from oven._readiness import ReadinessBoard
from oven.actors._async import AsyncActor
from oven.actors._base import ActorContext
from oven.actors._bridge import ask_async
from oven.actors._browser_pool import CancelCapture, CaptureStage
from oven.actors._encoder import CancelEncode
from oven.actors._grab_messages import (
    Cancel,
    GetJob,
    PieceFrozen,
    QueueFull,
    QueueStatus,
    Submit,
    Submitted,
    WaitFor,
    record_view,
)
from oven.actors._grab_run import Permanent, Pipeline, Transient, UploadPending
from oven.actors._store import StoreClient
from oven.config import Settings
from oven.encode import Format
from oven.grabs import GrabRequest, Lane, capture_key
from oven.store import JobRecord

log = logging.getLogger(__name__)


# -- state -----------------------------------------------------------------------------------


@dataclass
class _KeyLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


@dataclass
class _Active:
    record: JobRecord
    grab: GrabRequest
    target_url: str
    done: asyncio.Event = field(default_factory=asyncio.Event)
    stage: str = "queued"
    started: float | None = None
    task: asyncio.Task[None] | None = None
    holds_page: bool = False
    waiters: int = 1


class GrabQueue(AsyncActor):
    def __init__(self, ctx: ActorContext, settings: Settings, board: ReadinessBoard) -> None:
        super().__init__(ctx)
        self.settings = settings
        self.board = board
        self.store = StoreClient(ctx.lookup, timeout_s=settings.supervisor.ask_timeout_s)
        self.pipeline = Pipeline(ctx.lookup, settings)
        self.lanes: dict[Lane, collections.deque[str]] = {
            lane: collections.deque() for lane in Lane}
        self.active: dict[str, _Active] = {}
        self.by_key: dict[str, str] = {}
        self.capturing = 0
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=50)
        self.service_times: collections.deque[float] = collections.deque(maxlen=20)
        self.pending_uploads: dict[str, _Active] = {}
        self._upload_retry: asyncio.Task[None] | None = None
        self._stopping = False
        self._admitting: dict[str, _KeyLock] = {}

    # -- lifecycle ------------------------------------------------------------------------------

    async def start_async(self) -> None:
        self.recent = collections.deque(maxlen=self.settings.queue.recent_limit)
        await self._resume()
        self._upload_retry = asyncio.get_running_loop().create_task(self._retry_uploads())
        self._dispatch()

    async def stop_async(self) -> None:
        self._stopping = True
        if self._upload_retry is not None:
            self._upload_retry.cancel()
        # Running jobs stay `running` in the store and are retried at the next start.
        for active in self.active.values():
            if active.task is not None:
                active.task.cancel()

    async def _resume(self) -> None:
        """Jobs persisted by an earlier run: queued ones queue again, running ones are retried."""
        records = await self.store.list_jobs(
            {JobState.QUEUED, JobState.RUNNING, JobState.UPLOAD_PENDING}, newest_first=False)
        for record in records:
            request = dict(record.request)
            target = request.pop("target_url")
            grab = GrabRequest.model_validate(request)
            if record.state is JobState.RUNNING:
                record = await self.store.transition(
                    record.id, JobState.QUEUED, expect=JobState.RUNNING,
                    note="retried after a restart", stage="queued")
            active = _Active(record, grab, target)
            if record.state is JobState.UPLOAD_PENDING:
                self.pending_uploads[record.id] = active
                continue
            self.active[record.id] = active
            self.by_key[record.capture_key] = record.id
            self.lanes[Lane(record.lane)].append(record.id)
        if records:
            log.info("resumed %d jobs from the store", len(records))
        self._gauge()

    def reconfigure(self, settings: Any) -> None:
        self.settings = settings
        self.pipeline.settings = settings
        # call_soon_threadsafe: dispatch touches loop state; a larger pool may start jobs now
        self.loop.call_soon_threadsafe(self._dispatch)

    # -- messages -------------------------------------------------------------------------------

    def receive(self, message: Any) -> Any:
        match message:
            case Submit():
                return self.defer(self._submit(message))
            case GetJob(job_id=job_id):
                return self.defer(self._get(job_id))
            case WaitFor(job_id=job_id, timeout_s=timeout_s):
                return self.defer(self._wait(job_id, timeout_s))
            case Cancel(job_id=job_id):
                return self.defer(self._cancel(job_id))
            case QueueStatus():
                return self.defer(self._status())
            case CaptureStage(job_id=job_id, stage=stage):
                # call_soon_threadsafe: job state belongs to the loop, not the actor thread
                self.loop.call_soon_threadsafe(self._set_stage, job_id, stage)
                return None
        return super().receive(message)

    async def _submit(self, msg: Submit) -> Submitted:
        key = capture_key(msg.request, msg.target_url, self.settings.pieces.render_version)
        # Admission awaits the store; without a per-key lock, identical requests arriving
        # together would each pass the single-flight check before any of them registered.
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
        grab, settings = msg.request, self.settings
        existing = self.by_key.get(key)
        if existing is not None and existing in self.active:
            self.active[existing].waiters += 1
            return Submitted(self._view(self.active[existing]), cached=False, attached=True)
        if grab.piece is not None:
            until = await self.store.frozen_until(grab.piece)
            if until is not None and until > time.time():
                raise PieceFrozen(grab.piece, until)
        cached = await self.store.cache_get(key)
        if cached is not None:
            metrics.CACHE.labels(outcome="hit").inc()
            view = {"id": None, "state": JobState.COMPLETE.value, "capture_key": key,
                    "result": cached, "cached": True}
            return Submitted(view, cached=True, attached=False)
        metrics.CACHE.labels(outcome="miss").inc()
        queued = sum(len(q) for q in self.lanes.values())
        if queued >= settings.queue.max_queued:
            raise QueueFull(queued, self._eta(queued))
        request = grab.model_dump(mode="json") | {"target_url": msg.target_url}
        record = JobRecord.queued(id=uuid.uuid4().hex, capture_key=key, lane=grab.lane.value,
                                  request=request, deadline_s=settings.queue.deadline_s,
                                  piece=grab.piece)
        await self.store.insert_job(record)  # persisted before anyone hears of the job
        active = _Active(record, grab, msg.target_url)
        self.active[record.id] = active
        self.by_key[key] = record.id
        self.lanes[grab.lane].append(record.id)
        log.info("admitted job=%s piece=%s format=%s lane=%s", record.id, grab.subject,
                 grab.format.value, grab.lane.value)
        self._gauge()
        self._dispatch()
        return Submitted(self._view(active), cached=False, attached=False)

    def _set_stage(self, job_id: str, stage: str) -> None:
        active = self.active.get(job_id)
        if active is not None and active.task is not None and active.stage in (
                "navigate", "ready"):
            active.stage = stage

    async def _get(self, job_id: str) -> dict[str, Any] | None:
        active = self.active.get(job_id) or self.pending_uploads.get(job_id)
        if active is not None:
            return self._view(active)
        record = await self.store.get_job(job_id)
        return None if record is None else record_view(record)

    async def _wait(self, job_id: str, timeout_s: float) -> dict[str, Any] | None:
        active = self.active.get(job_id)
        if active is not None:
            # Bounded: the caller answers 202 with the position when this runs out.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(active.done.wait()), timeout_s)
        return await self._get(job_id)

    async def _cancel(self, job_id: str) -> dict[str, Any] | None:
        active = self.active.get(job_id)
        if active is None:
            return await self._get(job_id)
        for lane in self.lanes.values():
            if job_id in lane:
                lane.remove(job_id)
        if active.task is not None:
            active.task.cancel()
            # The running hop is stopped where it runs, not just abandoned here.
            for name, message in (("browser", CancelCapture(job_id)),
                                  ("encoder", CancelEncode(job_id))):
                try:
                    await ask_async(self.ctx.lookup.ref(name), message, timeout=5)
                except Exception as exc:
                    log.warning("cancel job=%s: %s did not confirm: %s", job_id, name, exc)
        else:
            await self._finish(active, JobState.CANCELLED, note="cancelled by a client")
        self._gauge()
        await active.done.wait()
        return await self._get(job_id)

    # -- dispatch -------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        if self._stopping:
            return  # shutdown: what is queued stays queued in the store for the next start
        pages = self.settings.browser.pages
        reserved = min(self.settings.queue.interactive_reserved, pages - 1)
        while self.capturing < pages and "memory" not in self.board.reasons():
            free = pages - self.capturing
            if self.lanes[Lane.INTERACTIVE]:
                lane = Lane.INTERACTIVE
            elif self.lanes[Lane.BACKGROUND] and free > reserved:
                lane = Lane.BACKGROUND
            else:
                break
            job_id = self.lanes[lane].popleft()
            active = self.active[job_id]
            self.capturing += 1
            active.holds_page = True
            active.task = asyncio.get_running_loop().create_task(self._run(active))
        self._gauge()

    def _page_free(self, active: _Active) -> None:
        if active.holds_page:
            active.holds_page = False
            self.capturing -= 1
            self._dispatch()

    async def _run(self, active: _Active) -> None:
        record = active.record
        metrics.STAGE_SECONDS.labels(stage="queue_wait").observe(time.time() - record.updated_at)
        try:
            record = active.record = await self.store.transition(
                record.id, JobState.RUNNING, expect=JobState.QUEUED,
                attempts=record.attempts + 1, stage="navigate")
            active.started = time.monotonic()

            def stage(name: str) -> None:
                active.stage = name

            outcome = await self.pipeline.run(
                record.id, record.capture_key, active.grab, active.target_url,
                record.deadline_at, stage, lambda: self._page_free(active))
        except asyncio.CancelledError:
            self._page_free(active)
            if self._stopping:
                raise  # shutdown: the job stays `running` and is retried at the next start
            await self._finish(active, JobState.CANCELLED, note="cancelled by a client")
            return
        except Transient as exc:
            await self._retry_or_fail(active, str(exc))
            return
        except Permanent as exc:
            await self._fail(active, str(exc))
            return
        except UploadPending as exc:
            log.warning("job=%s waits for storage: %s", record.id, exc)
            active.record = await self.store.transition(
                record.id, JobState.UPLOAD_PENDING, note=str(exc), stage="upload",
                error=str(exc), result=exc.facts, timings=exc.timings)
            self.pending_uploads[record.id] = active
            self._forget(active)
            return
        except Exception as exc:
            log.exception("job=%s failed unexpectedly", record.id)
            await self._fail(active, f"internal error: {exc!r}")
            return
        finally:
            self._page_free(active)
        await self._complete(active, outcome.result, outcome.timings)

    async def _complete(self, active: _Active, result: dict[str, Any],
                        timings: dict[str, float]) -> None:
        record = active.record
        if active.started is not None:
            self.service_times.append(time.monotonic() - active.started)
        # Cache first: between forgetting the key and caching it, a request would miss both.
        await self.store.cache_put(record.capture_key, result, self.settings.store.cache_ttl_s)
        await self._finish(active, JobState.COMPLETE, result=result, timings=timings,
                           error=None)
        if record.piece is not None:
            await self.store.record_piece_success(record.piece)

    async def _retry_or_fail(self, active: _Active, reason: str) -> None:
        record = active.record
        if record.attempts < self.settings.queue.max_attempts and time.time() < record.deadline_at:
            log.warning("job=%s attempt %d failed (%s); retrying", record.id, record.attempts,
                        reason)
            active.record = await self.store.transition(
                record.id, JobState.QUEUED, note=f"retry: {reason}", stage="queued")
            active.stage, active.task = "queued", None
            self.lanes[Lane(record.lane)].appendleft(record.id)  # it waited its turn already
            self._dispatch()
            return
        await self._fail(active, f"{reason} (after {record.attempts} attempts)")

    async def _fail(self, active: _Active, reason: str) -> None:
        record = active.record
        log.info("job=%s failed: %s", record.id, reason)
        await self._finish(active, JobState.FAILED, note=reason, error=reason)
        if record.piece is None:
            return
        count = await self.store.record_piece_failure(record.piece, reason)
        if count >= self.settings.queue.freeze_after:
            until = time.time() + self.settings.queue.freeze_for_s
            await self.store.freeze(record.piece, until, reason)
            log.warning("piece %s frozen for %.0f s after %d failures in a row: %s",
                        record.piece, self.settings.queue.freeze_for_s, count, reason)

    async def _finish(self, active: _Active, state: JobState, *, note: str | None = None,
                      **fields: Any) -> None:
        record = active.record
        active.record = await self.store.transition(record.id, state, note=note, stage=None,
                                                    **fields)
        metrics.GRABS.labels(format=active.grab.format.value, outcome=state.value).inc()
        self._forget(active)
        self.recent.appendleft(self._view(active))

    def _forget(self, active: _Active) -> None:
        record = active.record
        self.active.pop(record.id, None)
        if self.by_key.get(record.capture_key) == record.id:
            del self.by_key[record.capture_key]
        active.done.set()
        self._gauge()

    async def _retry_uploads(self) -> None:
        while True:
            await asyncio.sleep(self.settings.queue.upload_retry_s)
            for job_id, active in list(self.pending_uploads.items()):
                record = active.record
                path = self.pipeline.pending_path(job_id, active.grab.format.value)
                if not path.exists():
                    del self.pending_uploads[job_id]
                    await self.store.transition(job_id, JobState.FAILED, error="the encoded "
                                                "file waiting for upload was lost")
                    continue
                try:
                    stored = await self.pipeline.upload(
                        job_id, record.capture_key, active.grab.format.value, path,
                        Format(active.grab.format.value).content_type, {})
                except (UploadPending, Permanent) as exc:
                    log.info("job=%s still waiting for storage: %s", job_id, exc)
                    continue
                del self.pending_uploads[job_id]
                path.unlink(missing_ok=True)
                result = {**(record.result or {}), **stored}  # the capture facts kept at parking
                await self._complete(active, result, dict(record.timings))

    # -- views ----------------------------------------------------------------------------------

    def _position(self, job_id: str) -> int | None:
        ahead = 0
        for lane in (Lane.INTERACTIVE, Lane.BACKGROUND):
            if job_id in self.lanes[lane]:
                return ahead + self.lanes[lane].index(job_id) + 1
            ahead += len(self.lanes[lane])
        return None

    def _eta(self, position: int) -> float:
        per_job = (sum(self.service_times) / len(self.service_times)
                   if self.service_times else 2.0)
        return per_job * (position / max(1, self.settings.browser.pages) + 1)

    def _view(self, active: _Active) -> dict[str, Any]:
        view = record_view(active.record)
        position = self._position(active.record.id)
        view.update(stage=active.stage if not active.record.state.is_final else None,
                    position=position, eta_s=None if position is None else
                    round(self._eta(position), 1))
        return view

    def _gauge(self) -> None:
        for lane, queue in self.lanes.items():
            metrics.QUEUE_DEPTH.labels(lane=lane.value).set(len(queue))
        metrics.UPLOAD_PENDING.set(len(self.pending_uploads))
        queued = sum(len(q) for q in self.lanes.values())
        if queued >= self.settings.queue.max_queued:
            self.board.set("full", f"{queued} jobs queued")
        else:
            self.board.clear("full")

    async def _status(self) -> dict[str, Any]:
        running = [self._view(a) for a in self.active.values() if a.task is not None]
        return {
            "capturing": self.capturing,
            "running": running,
            "queued": {lane.value: [self._view(self.active[j]) for j in queue]
                       for lane, queue in self.lanes.items()},
            "upload_pending": [self._view(a) for a in self.pending_uploads.values()],
            "recent": list(self.recent),
        }


__all__ = [
    "Cancel",
    "GetJob",
    "GrabQueue",
    "PieceFrozen",
    "QueueFull",
    "QueueStatus",
    "Submit",
    "Submitted",
    "WaitFor",
]
