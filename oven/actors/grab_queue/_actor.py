"""GrabQueue actor: the shell around the queue's parts — lifecycle, messages, owned loops.

Message flow: HTTP/CLI → Submit → Admission (cache hit | attach to the active job holding the
capture key | persist as `queued`) → the store is the queue: whichever instance has a free page
slot claims the job under a lease (JobRunner) → Pipeline (BrowserPool → Encoder → Uploader) →
Settler writes the outcome (`complete` | `queued` again | `failed` | `upload_pending` |
`cancelled`) → waiters here are answered at once, waiters elsewhere at their next poll.

The parts, each given what it needs: the Book (this instance's view of the queue: runs, parked
uploads, the polled queue, views), Admission, JobRunner (claim, run, heartbeat), Settler
(outcomes, parked uploads), Pipeline (one job's hops), LeaseKeeper and Watchers (_lease),
Callbacks. All state lives on the actor's loop; the three loops here (poll, heartbeat, upload
retry) are owned by the actor and cancelled with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from oven import metrics
from oven.actors.grab_queue._admission import Admission
from oven.actors.grab_queue._book import Book, Run, parse_request
from oven.actors.grab_queue._callbacks import Callbacks
from oven.actors.grab_queue._instances import InstanceBeacon
from oven.actors.grab_queue._lease import LeaseKeeper, Watchers, resolve_instance_id
from oven.actors.grab_queue._messages import (
    Cancel,
    GetJob,
    InstancesSeen,
    JobElsewhere,
    LocateResult,
    QueueStatus,
    Submit,
    WaitFor,
)
from oven.actors.grab_queue._pipeline import Pipeline
from oven.actors.grab_queue._runner import JobRunner
from oven.actors.grab_queue._settle import Settler
from oven.actors.runtime import ActorContext, AsyncActor, ask_async
from oven.actors.store import StoreClient
from oven.actors.uploader import Locate, Location
from oven.config import Settings
from oven.jobs import JobState
from oven.readiness import ReadinessBoard
from oven.store import JobRecord, StaleState

log = logging.getLogger(__name__)

# How long a DELETE waits for a running job to settle before answering with its current view.
CANCEL_WAIT_S = 20.0


class GrabQueue(AsyncActor):
    def __init__(self, ctx: ActorContext, settings: Settings, board: ReadinessBoard) -> None:
        super().__init__(ctx)
        self.settings = settings
        self.instance = resolve_instance_id(settings)
        self.store = StoreClient(ctx.lookup, timeout_s=settings.supervisor.ask_timeout_s)
        self.watchers = Watchers()
        self.book = Book(settings, board, self.instance)
        self.leases = LeaseKeeper(self.store, self.instance, settings)
        self.pipeline = Pipeline(ctx.lookup, settings)
        self.callbacks = Callbacks(ctx.lookup, self.store, self.watchers, settings)
        self.settler = Settler(self.book, self.store, self.pipeline, self.watchers,
                               self.callbacks, settings)
        self.runner = JobRunner(self.book, self.store, self.leases, self.pipeline, self.settler,
                                self, lookup=ctx.lookup, board=board, settings=settings)
        self.admission = Admission(self.book, self.store, self.callbacks, self,
                                   kick=self.runner.kick, settings=settings)
        self.beacon = InstanceBeacon(self.store, self.book, self.leases, board, settings)
        self._poll_failing = False
        metrics.INSTANCE_INFO.labels(instance_id=self.instance).set(1)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start_async(self) -> None:
        await self._resume()
        await self.beacon.beat()  # others see this instance, and an API its workers, at once
        # Owned: a loop that dies is logged and crashes the actor into its supervisor, which
        # restarts it (a silent dead poll or heartbeat would strand every job of the instance).
        self.own("poll", self._poll)
        self.own("heartbeat", self._heartbeat)
        self.own("instance-beat", self._beat_instance)
        self.own("upload-retry", self._retry_uploads)
        self.runner.kick()

    async def stop_async(self) -> None:
        self.runner.stop()

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
            self.book.pending_uploads[record.id] = Run(record, grab, target, stage="upload",
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
            to, fields = JobState.QUEUED, {"stage": "queued"}
        try:
            record = await self.store.transition(
                record.id, to, expect=JobState.RUNNING, expect_owner=record.owner,
                expect_claim=record.claim, note=reason, **fields)
        except StaleState:
            return  # taken over meanwhile by another instance
        if to is JobState.FAILED:
            self.settler.finished(record)

    def reconfigure(self, settings: Any) -> None:
        self.settings = settings
        for part in (self.book, self.leases, self.pipeline, self.callbacks, self.settler,
                     self.runner, self.admission, self.beacon):
            part.settings = settings
        # call_soon_threadsafe: claiming touches loop state; a larger pool may start jobs now
        self.loop.call_soon_threadsafe(self.runner.kick)

    # -- messages -------------------------------------------------------------------------------

    def receive(self, message: Any) -> Any:
        match message:
            case Submit():
                return self.defer(self.admission.submit(message))
            case GetJob(job_id=job_id):
                return self.defer(self._get(job_id))
            case WaitFor(job_id=job_id, timeout_s=timeout_s):
                return self.defer(self._wait(job_id, timeout_s))
            case Cancel(job_id=job_id):
                return self.defer(self._cancel(job_id))
            case QueueStatus():
                return self.defer(self._status())
            case InstancesSeen():
                return self.defer(self._instances())
            case LocateResult(storage_key=key):
                return self.defer(self._locate(key))
        return super().receive(message)

    async def _get(self, job_id: str) -> dict[str, Any] | None:
        run = self.book.held(job_id)
        if run is not None:
            return self.book.view(run)
        # A queued job as of the last poll (at most cluster.poll_s old): no store round trip.
        record = self.book.queued_record(job_id)
        if record is None:
            record = await self.store.get_job(job_id)
        return None if record is None else self.book.view_record(record)

    async def _wait(self, job_id: str, timeout_s: float) -> dict[str, Any] | None:
        view = await self._get(job_id)
        if view is None or JobState(view["state"]).is_final:
            return view
        await self.watchers.wait(job_id, timeout_s)
        return await self._get(job_id)

    async def _cancel(self, job_id: str) -> dict[str, Any] | None:
        """Cancel a job wherever it is; cancelling twice, or a job already final, answers its
        view. A run whose attempt already ended is settling its outcome: that outcome stands."""
        run = self.book.held(job_id)
        if run is not None:
            run.cancel_requested = True
            if self.book.pending_uploads.get(job_id) is run and not run.uploading:
                await self.settler.cancel_parked(run)
            else:
                await self.runner.stop_run(run)
            # Bounded: settling waits for the store, and the caller's ask has its own timeout.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CANCEL_WAIT_S):
                    await run.done.wait()
            return await self._get(job_id)
        record = await self.store.get_job(job_id)
        if record is None or record.state.is_final:
            return None if record is None else self.book.view_record(record)
        if record.state is JobState.RUNNING:
            raise JobElsewhere(job_id, record.owner)
        try:
            record = await self.store.transition(
                job_id, JobState.CANCELLED, expect=record.state, note="cancelled by a client",
                stage=None)
        except StaleState:
            return await self._cancel(job_id)  # claimed meanwhile: here or elsewhere
        self.book.left_queue(job_id)
        self.settler.finished(record)
        return self.book.view_record(record)

    async def _status(self) -> dict[str, Any]:
        return self.book.status()

    async def _instances(self) -> list[dict[str, Any]]:
        return self.beacon.status()

    async def _locate(self, key: str) -> Location:
        # The queue answers for its results; where they are kept is the Uploader's to say.
        location: Location = await ask_async(
            self.ctx.lookup.ref("uploader"), Locate(key),
            timeout=self.settings.supervisor.ask_timeout_s)
        return location

    # -- owned loops ----------------------------------------------------------------------------

    async def _poll(self) -> None:
        """Every poll_s: the queue as others left it, expired leases, jobs finished elsewhere."""
        while True:
            await asyncio.sleep(self.settings.cluster.poll_s)
            try:
                await self.leases.requeue_expired({*self.book.runs, *self.book.pending_uploads})
                await self._refresh_queued()
                still_queued = {r.id for r in self.book.queued}
                for job_id in self.watchers.watched():
                    if job_id in self.book.runs or job_id in still_queued:
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
            if self.book.queued:
                self.runner.kick()

    async def _refresh_queued(self) -> None:
        # Only jobs new or written since the last poll come back as records: rebuilding up to
        # max_queued records every poll_s held the GIL the HTTP loop waits for.
        held, known, began = self.book.held_queue()
        read = await self.store.queued_jobs(limit=self.settings.queue.max_queued, known=known)
        self.book.read_queue(held, read, began)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.cluster.heartbeat_s)
            await self.runner.renew_leases()

    async def _beat_instance(self) -> None:
        while True:
            await asyncio.sleep(self.settings.cluster.heartbeat_s)
            await self.beacon.beat()

    async def _retry_uploads(self) -> None:
        while True:
            await asyncio.sleep(self.settings.queue.upload_retry_s)
            await self.settler.retry_parked()
