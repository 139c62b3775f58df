"""GrabQueue actor: admission, lanes, single-flight, result cache, dispatch, retries, freezing.

Messages and errors live in _grab_messages; the shared-queue mechanics (claims, leases, waiting
for jobs that finish elsewhere) in _grab_lease; one job's hops in _grab_run.

Message flow: HTTP/CLI → Submit → (cache hit | attach to the active job holding the capture key
| persist as `queued`) → the store is the queue: whichever instance has a free page slot claims
the job (lease) → Pipeline.run (BrowserPool → Encoder → Uploader) → the store marks it final →
waiters here are answered at once, waiters elsewhere at their next poll. All state lives on the
actor's loop.
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

from oven import metrics
from oven.actors.browser_pool import CaptureStage
from oven.actors.grab_queue._lease import LeaseKeeper, Watchers, resolve_instance_id
from oven.actors.grab_queue._messages import (
    CANCEL_DIGEST,
    Cancel,
    GetJob,
    JobElsewhere,
    PieceFrozen,
    QueueFull,
    QueueStatus,
    Submit,
    Submitted,
    WaitFor,
    new_cancel_token,
    record_view,
)
from oven.actors.grab_queue._pipeline import Pipeline
from oven.actors.grab_queue._runner import JobRunner, Run, parse_request
from oven.actors.runtime import ActorContext, AsyncActor
from oven.actors.store import StoreClient
from oven.config import Settings
from oven.grabs import Lane, capture_key
from oven.jobs import JobState
from oven.readiness import ReadinessBoard
from oven.store import CaptureKeyBusy, JobRecord, StaleState

log = logging.getLogger(__name__)

_LANE_ORDER = {Lane.INTERACTIVE.value: 0, Lane.BACKGROUND.value: 1}
# How long a DELETE waits for a running job to settle before answering with its current view.
CANCEL_WAIT_S = 20.0


# -- state -----------------------------------------------------------------------------------


@dataclass
class _KeyLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class GrabQueue(AsyncActor, JobRunner):
    def __init__(self, ctx: ActorContext, settings: Settings, board: ReadinessBoard) -> None:
        super().__init__(ctx)
        self.settings = settings
        self.board = board
        self.instance = resolve_instance_id(settings)
        self.store = StoreClient(ctx.lookup, timeout_s=settings.supervisor.ask_timeout_s)
        self.leases = LeaseKeeper(self.store, self.instance, settings)
        self.watchers = Watchers()
        self.pipeline = Pipeline(ctx.lookup, settings)
        self.runs: dict[str, Run] = {}
        self.pending_uploads: dict[str, Run] = {}
        self.capturing = 0
        # The shared queue as last read (every poll_s, and as jobs are admitted here): views
        # take positions from it and admission its depth.
        self.queued: list[JobRecord] = []
        self._queued_revisions: dict[str, int] = {}  # of self.queued's records, as last read
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=50)
        self.service_times: collections.deque[float] = collections.deque(maxlen=20)
        self._claim_again = False
        self._stopping = False
        self._poll_failing = False
        self._admitting: dict[str, _KeyLock] = {}
        metrics.INSTANCE_INFO.labels(instance_id=self.instance).set(1)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start_async(self) -> None:
        self.recent = collections.deque(maxlen=self.settings.queue.recent_limit)
        await self._resume()
        # Owned: a loop that dies is logged and crashes the actor into its supervisor, which
        # restarts it (a silent dead poll or heartbeat would strand every job of the instance).
        self.own("poll", self._poll)
        self.own("heartbeat", self._heartbeat)
        self.own("upload-retry", self._retry_uploads)
        self._kick()

    async def stop_async(self) -> None:
        self._stopping = True
        # Running jobs stay `running` with our name on them: requeued when this instance starts
        # again, or by another instance once their lease runs out.
        for run in list(self.runs.values()):
            if run.task is not None:
                run.task.cancel()

    async def _resume(self) -> None:
        """Jobs an earlier run of this instance held: running ones queue again, parked uploads
        are retried. Queued jobs need nothing: the store is the queue."""
        records = await self.store.list_jobs(
            {JobState.RUNNING, JobState.UPLOAD_PENDING}, newest_first=False, limit=100_000)
        mine = [r for r in records if r.owner in (self.instance, None)]
        for record in mine:
            if record.state is JobState.RUNNING:
                await self._requeue_after_restart(record)
                continue
            grab, target = parse_request(record)
            self.pending_uploads[record.id] = Run(record, grab, target, stage="upload",
                                                   holds_page=False)
        if mine:
            log.info("instance %s resumed %d of its jobs from the store", self.instance,
                     len(mine))
        await self._refresh_queued()

    async def _requeue_after_restart(self, record: JobRecord) -> None:
        """A job this instance was running when it stopped: queued again, unless it is out of
        attempts or time (a job that takes the whole instance down must not do so forever)."""
        out_of_tries = record.attempts >= self.settings.queue.max_attempts
        fields: dict[str, Any]
        if out_of_tries or time.time() >= record.deadline_at:
            why = (f"{record.attempts} attempts" if out_of_tries else "its deadline passed")
            reason = f"{self.instance} stopped while running it, and {why}"
            to, fields = JobState.FAILED, {"error": reason, "stage": None}
        else:
            reason = f"requeued after {self.instance} restarted"
            to, fields = JobState.QUEUED, {"stage": "queued", "owner": None}
        try:
            record = await self.store.transition(
                record.id, to, expect=JobState.RUNNING, expect_owner=record.owner,
                expect_claim=record.claim, note=reason, lease_expires_at=None, **fields)
        except StaleState:
            return  # taken over meanwhile by another instance
        if to is JobState.FAILED:
            self._finished(record)

    def reconfigure(self, settings: Any) -> None:
        self.settings = settings
        self.pipeline.settings = settings
        self.leases.settings = settings
        # call_soon_threadsafe: claiming touches loop state; a larger pool may start jobs now
        self.loop.call_soon_threadsafe(self._kick)

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
        grab, settings = msg.request, self.settings
        # Cheapest refusal first: in a burst most submissions meet a full queue, and each
        # store round trip is GIL time the HTTP loop waits for.
        cached = await self.store.cache_get(key)
        if cached is not None:
            metrics.CACHE.labels(outcome="hit").inc()
            view = {"id": None, "state": JobState.COMPLETE.value, "capture_key": key,
                    "result": cached, "cached": True}
            if grab.callback_url is not None:
                self._callback(grab.callback_url, None, JobState.COMPLETE, cached, None)
            return Submitted(view, cached=True, attached=False)
        metrics.CACHE.labels(outcome="miss").inc()
        queued = len(self.queued)
        if queued >= settings.queue.max_queued:
            raise QueueFull(queued, self._eta(queued))
        if grab.piece is not None:
            until = await self.store.frozen_until(grab.piece)
            if until is not None and until > time.time():
                raise PieceFrozen(grab.piece, until)
        cancel_token, digest = new_cancel_token()
        request = grab.model_dump(mode="json") | {"target_url": msg.target_url,
                                                  CANCEL_DIGEST: digest}
        record = JobRecord.queued(id=uuid.uuid4().hex, capture_key=key, lane=grab.lane.value,
                                  request=request, deadline_s=settings.queue.deadline_s,
                                  piece=grab.piece)
        try:
            await self.store.insert_job(record)  # persisted before anyone hears of the job
        except CaptureKeyBusy as busy:
            # Single-flight: the key is queued or running (here or in another instance).
            holder = busy.holder
            if grab.callback_url is not None:
                self.spawn(self._callback_when_final(holder.id, grab.callback_url))
            return Submitted(self._view_record(holder), cached=False, attached=True)
        self.queued.append(record)
        self.queued.sort(key=lambda r: (_LANE_ORDER[r.lane], r.created_at, r.id))
        log.info("admitted job=%s piece=%s format=%s lane=%s", record.id, grab.subject,
                 grab.format.value, grab.lane.value)
        self._gauge()
        self._kick()
        return Submitted(self._view_record(record), cached=False, attached=False,
                         cancel_token=cancel_token)

    def _set_stage(self, job_id: str, stage: str) -> None:
        run = self.runs.get(job_id)
        if run is not None and run.stage in ("navigate", "ready"):
            run.stage = stage

    async def _get(self, job_id: str) -> dict[str, Any] | None:
        run = self.runs.get(job_id) or self.pending_uploads.get(job_id)
        if run is not None:
            return self._view(run)
        # A queued job as of the last poll (at most cluster.poll_s old): no store round trip.
        record = next((r for r in self.queued if r.id == job_id), None)
        if record is None:
            record = await self.store.get_job(job_id)
        return None if record is None else self._view_record(record)

    async def _wait(self, job_id: str, timeout_s: float) -> dict[str, Any] | None:
        view = await self._get(job_id)
        if view is None or JobState(view["state"]).is_final:
            return view
        await self.watchers.wait(job_id, timeout_s)
        return await self._get(job_id)

    async def _cancel(self, job_id: str) -> dict[str, Any] | None:
        """Cancel a job wherever it is; cancelling twice, or a job already final, answers its
        view. A run whose attempt already ended is settling its outcome: that outcome stands."""
        run = self.runs.get(job_id) or self.pending_uploads.get(job_id)
        if run is not None:
            run.cancel_requested = True
            if self.pending_uploads.get(job_id) is run and not run.uploading:
                await self._cancel_parked(run)
            else:
                await self._stop_run(run)
            # Bounded: settling waits for the store, and the caller's ask has its own timeout.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CANCEL_WAIT_S):
                    await run.done.wait()
            return await self._get(job_id)
        record = await self.store.get_job(job_id)
        if record is None or record.state.is_final:
            return None if record is None else self._view_record(record)
        if record.state is JobState.RUNNING:
            raise JobElsewhere(job_id, record.owner)
        try:
            record = await self.store.transition(
                job_id, JobState.CANCELLED, expect=record.state, note="cancelled by a client",
                stage=None, lease_expires_at=None)
        except StaleState:
            return await self._cancel(job_id)  # claimed meanwhile: here or elsewhere
        self._finished(record)
        return self._view_record(record)

    # -- background loops -----------------------------------------------------------------------

    async def _poll(self) -> None:
        """Every poll_s: the queue as others left it, expired leases, jobs finished elsewhere."""
        while True:
            await asyncio.sleep(self.settings.cluster.poll_s)
            try:
                await self.leases.requeue_expired({*self.runs, *self.pending_uploads})
                await self._refresh_queued()
                still_queued = {r.id for r in self.queued}
                for job_id in self.watchers.watched():
                    if job_id in self.runs or job_id in still_queued:
                        continue  # finishes here and notifies at once, or not started yet
                    record = await self.store.get_job(job_id)
                    if record is None or record.state.is_final:
                        self.watchers.notify(job_id)
            except Exception as exc:
                if not self._poll_failing:  # once per outage, not every poll_s
                    log.warning("polling the shared queue failed: %s", exc)
                self._poll_failing = True
                continue
            if self._poll_failing:
                log.info("polling the shared queue works again")
                self._poll_failing = False
            if self.queued:
                self._kick()

    async def _refresh_queued(self) -> None:
        # Only jobs new or written since the last poll come back as records: rebuilding up to
        # max_queued records every poll_s held the GIL the HTTP loop waits for.
        held = {r.id: r for r in self.queued if r.id in self._queued_revisions}
        known = {i: self._queued_revisions[i] for i in held}
        read = await self.store.queued_jobs(limit=self.settings.queue.max_queued, known=known)
        held.update(read.records)
        self.queued = [held[i] for i in read.revisions]
        self._queued_revisions = read.revisions
        self.queued.sort(key=lambda r: (_LANE_ORDER[r.lane], r.created_at, r.id))
        self._gauge()

    # -- views ----------------------------------------------------------------------------------

    def _position(self, job_id: str) -> int | None:
        for index, record in enumerate(self.queued):
            if record.id == job_id:
                return index + 1
        return None

    def _eta(self, position: int) -> float:
        per_job = (sum(self.service_times) / len(self.service_times)
                   if self.service_times else 2.0)
        return per_job * (position / max(1, self.settings.browser.pages) + 1)

    def _view_record(self, record: JobRecord) -> dict[str, Any]:
        view = record_view(record)
        position = self._position(record.id) if record.state is JobState.QUEUED else None
        view.update(position=position,
                    eta_s=None if position is None else round(self._eta(position), 1))
        return view

    def _view(self, run: Run) -> dict[str, Any]:
        view = self._view_record(run.record)
        if not run.record.state.is_final:
            view["stage"] = run.stage
        return view

    def _gauge(self) -> None:
        depth = collections.Counter(r.lane for r in self.queued)
        for lane in Lane:
            metrics.QUEUE_DEPTH.labels(lane=lane.value).set(depth[lane.value])
        metrics.UPLOAD_PENDING.set(len(self.pending_uploads))
        if len(self.queued) >= self.settings.queue.max_queued:
            self.board.set("full", f"{len(self.queued)} jobs queued")
        else:
            self.board.clear("full")

    async def _status(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance,
            "capturing": self.capturing,
            "running": [self._view(r) for r in self.runs.values()],
            "queued": {lane.value: [self._view_record(r) for r in self.queued
                                    if r.lane == lane.value] for lane in Lane},
            "upload_pending": [self._view(r) for r in self.pending_uploads.values()],
            "recent": list(self.recent),
        }


__all__ = [
    "Cancel",
    "GetJob",
    "GrabQueue",
    "JobElsewhere",
    "PieceFrozen",
    "QueueFull",
    "QueueStatus",
    "Submit",
    "Submitted",
    "WaitFor",
]
