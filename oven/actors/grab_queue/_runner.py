"""The jobs one instance runs: claiming them for free page slots, running each through the
pipeline, and settling it (complete, retry, fail, park for storage) under the lease it holds.

A mixin of GrabQueue (oven/actors/_grab_queue.py): it shares the actor's loop and state; it is
its own module so admission and views read apart from the run of a job.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from oven import metrics
from oven.actors.browser_pool import CancelCapture
from oven.actors.encoder import CancelEncode
from oven.actors.grab_queue._lease import LeaseKeeper, Watchers
from oven.actors.grab_queue._messages import CANCEL_DIGEST
from oven.actors.grab_queue._pipeline import Outcome, Permanent, Pipeline, Transient, UploadPending
from oven.actors.runtime import ActorContext, AskTimeout, ask_async
from oven.actors.store import StoreClient
from oven.actors.webhooks import Deliver
from oven.config import Settings
from oven.encode import Format
from oven.grabs import GrabRequest, Lane
from oven.jobs import JobState
from oven.readiness import ReadinessBoard
from oven.store import JobRecord, StaleState, StoreUnavailable
from oven.supervisor import ActorUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class Run:
    """A job this instance holds the lease of (running, or parked in upload_pending).

    `task` is the run's whole life: the attempt, then settling its outcome in the store.
    `attempt` is the cancellable part (the pipeline); a cancel stops only it, so a cancel that
    lands while the outcome is being written cannot tear the write in half. `claim` is the
    store's token for this claim: every settle and renewal carries it.
    """

    record: JobRecord
    grab: GrabRequest
    target_url: str
    done: asyncio.Event = field(default_factory=asyncio.Event)
    stage: str = "navigate"
    started: float = field(default_factory=time.monotonic)
    task: asyncio.Task[None] | None = None
    attempt: asyncio.Task[Outcome] | None = None
    holds_page: bool = True
    lease_lost: bool = False
    cancel_requested: bool = False
    uploading: bool = False  # a parked job's upload is under way in the retry loop

    @property
    def claim(self) -> str | None:
        return self.record.claim


def _log_run_end(task: asyncio.Task[None]) -> None:
    """A run's task is owned by its Run; an exception escaping it is a bug worth an ERROR line
    (the run itself was already forgotten in its `finally`)."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("%s ended with an unexpected error", task.get_name(), exc_info=exc)


def parse_request(record: JobRecord) -> tuple[GrabRequest, str]:
    request = dict(record.request)
    target = request.pop("target_url")
    request.pop(CANCEL_DIGEST, None)
    return GrabRequest.model_validate(request), target


class JobRunner:
    # The GrabQueue state this room works on (set up in GrabQueue.__init__).
    ctx: ActorContext
    settings: Settings
    board: ReadinessBoard
    instance: str
    store: StoreClient
    leases: LeaseKeeper
    watchers: Watchers
    pipeline: Pipeline
    runs: dict[str, Run]
    pending_uploads: dict[str, Run]
    capturing: int
    queued: list[JobRecord]
    recent: collections.deque[dict[str, Any]]
    service_times: collections.deque[float]
    _claim_again: bool
    _stopping: bool

    # Provided by GrabQueue (and its AsyncActor base).
    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> None:
        raise NotImplementedError

    def own(self, name: str, factory: Callable[[], Coroutine[Any, Any, None]]
            ) -> asyncio.Task[None]:
        raise NotImplementedError

    def owned(self, name: str) -> asyncio.Task[None] | None:
        raise NotImplementedError

    @property
    def closing(self) -> bool:
        raise NotImplementedError

    def _gauge(self) -> None:
        raise NotImplementedError

    def _view_record(self, record: JobRecord) -> dict[str, Any]:
        raise NotImplementedError

    async def _stop_run(self, run: Run) -> None:
        """Cancel a running job's attempt and stop its hop where it runs (page, ffmpeg).
        Idempotent; once the attempt has ended, its outcome is being settled and stands."""
        if run.attempt is None or run.attempt.done():
            return
        run.attempt.cancel()
        for name, message in (("browser", CancelCapture(run.record.id)),
                              ("encoder", CancelEncode(run.record.id))):
            try:
                await ask_async(self.ctx.lookup.ref(name), message, timeout=5)
            except Exception as exc:
                log.warning("cancel job=%s: %s did not confirm: %s", run.record.id, name, exc)

    # -- claiming and running -------------------------------------------------------------------

    def _kick(self) -> None:
        """Claim work for free page slots, now or as soon as the claim under way returns."""
        self._claim_again = True
        if not (self._stopping or self.closing) and self.owned("claim") is None:
            self.own("claim", self._claim)

    async def _claim(self) -> None:
        while self._claim_again and not self._stopping:
            self._claim_again = False
            # Any reason this instance is not ready (memory pressure, a browser that is down
            # or restarting, an unreachable store) is a reason not to take work others could
            # run; "full" is about admission, not about running.
            while not self._stopping and not (set(self.board.reasons()) - {"full"}):
                pages = self.settings.browser.pages
                free = pages - self.capturing
                if free <= 0:
                    break
                reserved = min(self.settings.queue.interactive_reserved, pages - 1)
                lanes = [Lane.INTERACTIVE.value]
                if free > reserved:
                    lanes.append(Lane.BACKGROUND.value)
                self.capturing += 1  # the slot is ours while the claim is in flight
                try:
                    record = await self.leases.claim(lanes)
                except Exception as exc:
                    self.capturing -= 1
                    log.warning("claiming a job failed: %s", exc)
                    return  # the next poll tries again
                if record is None:
                    self.capturing -= 1
                    break
                self._start(record)
        self._gauge()

    def _start(self, record: JobRecord) -> None:
        self.queued = [r for r in self.queued if r.id != record.id]
        try:
            grab, target = parse_request(record)
        except Exception as exc:  # a record this version cannot read: fail it, not the actor
            self.capturing -= 1
            self.spawn(self._fail_unreadable(record, exc))
            return
        run = Run(record, grab, target)
        self.runs[record.id] = run
        run.task = asyncio.get_running_loop().create_task(self._run(run), name=f"run {record.id}")
        run.task.add_done_callback(_log_run_end)

    async def _fail_unreadable(self, record: JobRecord, exc: Exception) -> None:
        reason = f"the stored request cannot be read: {exc}"
        record = await self.store.transition(record.id, JobState.FAILED, note=reason,
                                             error=reason, expect_owner=self.instance,
                                             expect_claim=record.claim)
        self._finished(record)

    def _page_free(self, run: Run) -> None:
        if run.holds_page:
            run.holds_page = False
            self.capturing -= 1
            self._kick()

    async def _run(self, run: Run) -> None:
        """The life of one claimed job: its attempt, then its outcome settled in the store.
        Whatever happens, the run is forgotten at the end (and its waiters woken)."""
        record = run.record
        if len(record.history) > 1:  # from (re)queueing to this claim
            metrics.STAGE_SECONDS.labels(stage="queue_wait").observe(
                max(0.0, record.history[-1].at - record.history[-2].at))
        run.attempt = asyncio.get_running_loop().create_task(
            self._attempt(run), name=f"attempt {record.id}")
        try:
            try:
                outcome = await run.attempt
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if self._stopping or (task is not None and task.cancelling()):
                    raise  # shutdown: the job stays `running` and is requeued at the next start
                self._page_free(run)
                if not run.lease_lost:  # else another instance runs it now
                    await self._finish(run, JobState.CANCELLED, note="cancelled by a client")
                return
            # A failed attempt keeps its page slot until its outcome is settled: the next
            # claim then sees a freeze this failure caused, instead of capturing the piece again.
            except Transient as exc:
                await self._retry_or_fail(run, exc)
                return
            except Permanent as exc:
                await self._fail(run, str(exc), blame_piece=exc.piece_fault)
                return
            except UploadPending as exc:
                await self._park(run, exc)
                return
            except Exception as exc:
                log.exception("job=%s failed unexpectedly", record.id)
                await self._fail(run, f"internal error: {exc!r}")  # oven's, not the piece's
                return
            await self._complete(run, outcome.result, outcome.timings)
        finally:
            self._page_free(run)
            if run.record.state is not JobState.UPLOAD_PENDING or run.lease_lost:
                self._forget(run)

    async def _attempt(self, run: Run) -> Outcome:
        """The cancellable part of a run: a frozen piece fails fast, else the pipeline."""
        record = run.record
        if record.piece is not None:
            try:
                until = await self.store.frozen_until(record.piece)
            except (StoreUnavailable, AskTimeout, ActorUnavailable) as exc:
                raise Transient(f"store: {exc}") from None
            if until is not None and until > time.time():
                raise Permanent(f"piece {record.piece!r} is frozen for "
                                f"{until - time.time():.0f} s more; not captured")

        def stage(name: str) -> None:
            run.stage = name

        return await self.pipeline.run(
            record.id, record.capture_key, run.grab, run.target_url, record.deadline_at,
            stage, lambda: self._page_free(run))

    async def _park(self, run: Run, exc: UploadPending) -> None:
        """Storage is down: keep the encoded file and the job's lease, retry the upload."""
        log.warning("job=%s waits for storage: %s", run.record.id, exc)
        if not await self._move(run, JobState.UPLOAD_PENDING, note=str(exc), stage="upload",
                                error=str(exc), result=exc.facts, timings=exc.timings,
                                lease_expires_at=time.time() + self.settings.cluster.lease_s):
            return
        if self.runs.get(run.record.id) is run:
            del self.runs[run.record.id]
        self.pending_uploads[run.record.id] = run
        self._gauge()
        if run.cancel_requested:  # a cancel arrived while the attempt ended in parking
            await self._cancel_parked(run)

    async def _move(self, run: Run, state: JobState, *, note: str | None,
                    **fields: Any) -> bool:
        """Transition a job we hold; False (and the job dropped here) if its lease moved on."""
        job_id = run.record.id
        try:
            run.record = await self._stored(lambda: self.store.transition(
                job_id, state, expect_owner=self.instance, expect_claim=run.claim, note=note,
                **fields))
        except StaleState as exc:
            # Our lease passed on (we were silent too long) or a client cancelled the job
            # elsewhere: either way it is no longer ours to finish.
            log.warning("job=%s: %s; dropping this instance's run", run.record.id, exc)
            metrics.LEASES_LOST.labels(instance_id=self.instance).inc()
            run.lease_lost = True
            self._forget(run)
            return False
        return True

    async def _stored(self, write: Callable[[], Awaitable[T]]) -> T:
        """A write that settles a job, retried while the store is unreachable.

        The work is done and its file stored: when the store comes back, the outcome is
        written (the heartbeat keeps renewing the lease meanwhile, once it can).
        """
        delay = 0.5
        while True:
            try:
                return await write()
            except (StoreUnavailable, AskTimeout, ActorUnavailable) as exc:
                if self._stopping:
                    raise
                log.warning("the store is unreachable (%s); writing again in %.1f s", exc,
                            delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _complete(self, run: Run, result: dict[str, Any],
                        timings: dict[str, float]) -> None:
        record = run.record
        self.service_times.append(time.monotonic() - run.started)
        ttl = self.settings.store.cache_ttl_s
        if ttl > 0:
            # Cache first: between releasing the key and caching it, a request would miss both.
            await self._stored(lambda: self.store.cache_put(record.capture_key, result, ttl))
        if await self._finish(run, JobState.COMPLETE, result=result, timings=timings,
                              error=None) and record.piece is not None:
            await self._stored(lambda: self.store.record_piece_success(record.piece or ""))

    async def _retry_or_fail(self, run: Run, failure: Transient) -> None:
        record, reason = run.record, str(failure)
        if not failure.counts_attempt and time.time() < record.deadline_at:
            # oven's or another page's doing: requeued with the claim's attempt given back
            # (the job's deadline still bounds how often this can happen).
            log.warning("job=%s attempt %d lost through no fault of its own (%s); requeued, "
                        "not counted", record.id, record.attempts, reason)
            if await self._move(run, JobState.QUEUED, note=f"requeued, attempt not counted: "
                                f"{reason}", stage="queued", owner=None, lease_expires_at=None,
                                attempts=max(0, record.attempts - 1)):
                self._forget(run)
                self._kick()
            return
        if record.attempts < self.settings.queue.max_attempts and time.time() < record.deadline_at:
            log.warning("job=%s attempt %d failed (%s); retrying", record.id, record.attempts,
                        reason)
            # Back into the shared queue; its age puts it first in its lane.
            if await self._move(run, JobState.QUEUED, note=f"retry: {reason}", stage="queued",
                                owner=None, lease_expires_at=None):
                self._forget(run)
                self._kick()  # claims it again (here or elsewhere); the next poll shows it queued
            return
        await self._fail(run, f"{reason} (after {record.attempts} attempts)",
                         blame_piece=failure.piece_fault)

    async def _fail(self, run: Run, reason: str, *, blame_piece: bool = False) -> None:
        """Fail the job; only a failure of the piece itself counts toward freezing it."""
        record = run.record
        log.info("job=%s failed: %s", record.id, reason)
        if not await self._finish(run, JobState.FAILED, note=reason, error=reason):
            return
        if record.piece is None or not blame_piece:
            return
        piece = record.piece
        count = await self._stored(lambda: self.store.record_piece_failure(piece, reason))
        if count >= self.settings.queue.freeze_after:
            until = time.time() + self.settings.queue.freeze_for_s
            await self._stored(lambda: self.store.freeze(piece, until, reason))
            log.warning("piece %s frozen for %.0f s after %d failures in a row: %s",
                        record.piece, self.settings.queue.freeze_for_s, count, reason)

    async def _finish(self, run: Run, state: JobState, *, note: str | None = None,
                      **fields: Any) -> bool:
        if not await self._move(run, state, note=note, stage=None, lease_expires_at=None,
                                **fields):
            return False
        metrics.GRABS.labels(format=run.grab.format.value, outcome=state.value).inc()
        self._forget(run)
        self._finished(run.record)
        return True

    def _finished(self, record: JobRecord) -> None:
        """A job reached a final state through this instance: answer and announce it."""
        self.recent.appendleft(self._view_record(record))
        self.watchers.notify(record.id)
        callback = record.request.get("callback_url")
        if callback:
            result = record.result or {}
            self._callback(callback, record.id, record.state, result, record.error)

    def _forget(self, run: Run) -> None:
        # Only this run: a newer claim of the same job (after our lease lapsed) may be here too.
        for table in (self.runs, self.pending_uploads):
            if table.get(run.record.id) is run:
                del table[run.record.id]
        run.done.set()
        self._gauge()

    # -- webhooks -------------------------------------------------------------------------------

    def _callback(self, url: str, job_id: str | None, state: JobState,
                  result: dict[str, Any], error: str | None) -> None:
        # Local storage has no public URL: the path under this service (as in the API).
        result_url = result.get("url") or (f"/results/{result['storage_key']}"
                                           if result.get("storage_key") else None)
        payload = {"id": job_id, "state": state.value, "url": result_url, "thumbnail_url": None,
                   "error": error}
        try:
            self.ctx.lookup.ref("webhooks").tell(
                Deliver(kind="grab", subject_id=job_id or "cached", url=url, payload=payload))
        except Exception as exc:  # delivery never blocks or breaks the job
            log.warning("job=%s: webhook to %s not queued: %s", job_id, url, exc)

    async def _callback_when_final(self, job_id: str, url: str) -> None:
        """A callback given by a request that attached to a running job (held here only)."""
        deadline = self.settings.queue.deadline_s + self.settings.cluster.lease_s
        await self.watchers.wait(job_id, deadline)
        record = await self.store.get_job(job_id)
        if record is not None and record.state.is_final:
            self._callback(url, job_id, record.state, record.result or {}, record.error)

    # -- leases and parked uploads of our jobs ---------------------------------------------------

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.cluster.heartbeat_s)
            held = [run for run in (*self.runs.values(), *self.pending_uploads.values())
                    if not run.record.state.is_final]
            try:
                lost = await self.leases.renew([(run.record.id, run.claim) for run in held])
            except Exception as exc:
                log.warning("renewing leases failed (%s); retrying in %.0f s", exc,
                            self.settings.cluster.heartbeat_s)
                continue
            for run in held:
                if run.record.id not in lost:
                    continue
                log.warning("job=%s: lease lost (another instance took it over); stopping here",
                            run.record.id)
                metrics.LEASES_LOST.labels(instance_id=self.instance).inc()
                run.lease_lost = True
                if self.pending_uploads.get(run.record.id) is run:
                    self._drop_parked_file(run)
                    self._forget(run)
                else:
                    await self._stop_run(run)

    async def _retry_uploads(self) -> None:
        while True:
            await asyncio.sleep(self.settings.queue.upload_retry_s)
            for job_id, run in list(self.pending_uploads.items()):
                if self.pending_uploads.get(job_id) is not run:
                    continue  # cancelled or taken over while an earlier upload ran
                try:
                    await self._retry_upload(run)
                except Exception as exc:
                    # One job's trouble must not end the loop that serves every parked job; a
                    # failure nobody foresaw will not mend itself, so the job fails with it.
                    log.exception("job=%s: retrying its parked upload failed", job_id)
                    await self._fail_parked(run, f"its parked upload failed: {exc!r}")

    async def _fail_parked(self, run: Run, reason: str) -> None:
        try:
            await self._finish(run, JobState.FAILED, note=reason, error=reason)
        except Exception:
            log.exception("job=%s: could not record its failure; retried next round",
                          run.record.id)
            return
        self._drop_parked_file(run)

    async def _retry_upload(self, run: Run) -> None:
        record, fmt = run.record, run.grab.format.value
        path = self.pipeline.pending_path(record.id, fmt)
        if not path.exists():
            await self._finish(run, JobState.FAILED, error="the encoded file waiting for "
                               "upload was lost")
            return
        run.uploading = True
        try:
            stored = await self.pipeline.upload(
                record.id, record.capture_key, fmt, path, Format(fmt).content_type, {})
        except UploadPending as exc:
            log.info("job=%s still waiting for storage: %s", record.id, exc)
            stored = None
        except Permanent as exc:  # storage answered, and no retry will change its answer
            if not run.cancel_requested:
                await self._fail_parked(run, str(exc))
                return
            stored = None
        finally:
            run.uploading = False
        if run.cancel_requested:  # cancelled during the upload: no result, no cache entry
            await self._cancel_parked(run)
            return
        if stored is None:
            return
        path.unlink(missing_ok=True)
        result = {**(record.result or {}), **stored}  # the capture facts kept at parking
        await self._complete(run, result, dict(record.timings))

    async def _cancel_parked(self, run: Run) -> None:
        """Cancel a job parked in upload_pending here: its kept file goes with it."""
        await self._finish(run, JobState.CANCELLED, note="cancelled by a client")
        self._drop_parked_file(run)

    def _drop_parked_file(self, run: Run) -> None:
        path = self.pipeline.pending_path(run.record.id, run.grab.format.value)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:  # cleanup must never take the loop that called it down with it
            log.warning("job=%s: could not remove its parked file %s: %s", run.record.id, path,
                        exc)
