"""Settling a run's outcome in the store, under the lease this instance holds.

An attempt ends one of four ways, and each is one transition of the job:
- done → `complete` (cached first, the piece's failure streak cleared);
- transient failure → `queued` again (attempt given back when it was not the job's doing), or
  `failed` once out of attempts or time;
- permanent failure → `failed` (counting toward freezing the piece when the piece is to blame);
- storage down → `upload_pending`: the encoded file is kept and the lease held, and the upload
  is retried every `queue.upload_retry_s` (see `retry_parked`) until it is stored → `complete`.
A cancel ends a run as `cancelled`. Every write carries the claim; a write that finds the lease
gone drops the run here (another instance owns the job now).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from oven import metrics
from oven.actors.grab_queue._book import Book, Run
from oven.actors.grab_queue._callbacks import Callbacks
from oven.actors.grab_queue._lease import Watchers
from oven.actors.grab_queue._pipeline import Permanent, Pipeline, Transient, UploadPending
from oven.actors.runtime import AskTimeout
from oven.actors.store import StoreClient
from oven.config import Settings
from oven.jobs import JobState
from oven.store import JobRecord, StaleState, StoreUnavailable
from oven.supervisor import ActorUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


class Settler:
    def __init__(self, book: Book, store: StoreClient, pipeline: Pipeline, watchers: Watchers,
                 callbacks: Callbacks, settings: Settings) -> None:
        self.book = book
        self.store = store
        self.pipeline = pipeline
        self.watchers = watchers
        self.callbacks = callbacks
        self.settings = settings

    @property
    def instance(self) -> str:
        return self.book.instance

    # -- outcomes -------------------------------------------------------------------------------

    async def complete(self, run: Run, result: dict[str, Any],
                       timings: dict[str, float]) -> None:
        record = run.record
        self.book.service_times.append(time.monotonic() - run.started)
        ttl = self.settings.store.cache_ttl_s
        if ttl > 0:
            # Cache first: between releasing the key and caching it, a request would miss both.
            await self._stored(lambda: self.store.cache_put(record.capture_key, result, ttl))
        if await self.finish(run, JobState.COMPLETE, result=result, timings=timings,
                             error=None) and record.piece is not None:
            await self._stored(lambda: self.store.record_piece_success(record.piece or ""))

    async def retry_or_fail(self, run: Run, failure: Transient) -> bool:
        """Queue the job again, or fail it when out of attempts or time. True once requeued
        (the caller claims again)."""
        record, reason = run.record, str(failure)
        if not failure.counts_attempt and time.time() < record.deadline_at:
            # oven's or another page's doing: requeued with the claim's attempt given back
            # (the job's deadline still bounds how often this can happen).
            log.warning("job=%s attempt %d lost through no fault of its own (%s); requeued, "
                        "not counted", record.id, record.attempts, reason)
            if await self._move(run, JobState.QUEUED, note=f"requeued, attempt not counted: "
                                f"{reason}", stage="queued",
                                attempts=max(0, record.attempts - 1)):
                self.book.forget(run)
                return True
            return False
        if record.attempts < self.settings.queue.max_attempts and time.time() < record.deadline_at:
            log.warning("job=%s attempt %d failed (%s); retrying", record.id, record.attempts,
                        reason)
            # Back into the shared queue; its age puts it first in its lane.
            if await self._move(run, JobState.QUEUED, note=f"retry: {reason}", stage="queued"):
                self.book.forget(run)
                return True  # claimed again (here or elsewhere); the next poll shows it queued
            return False
        await self.fail(run, f"{reason} (after {record.attempts} attempts)",
                        blame_piece=failure.piece_fault)
        return False

    async def fail(self, run: Run, reason: str, *, blame_piece: bool = False) -> None:
        """Fail the job; only a failure of the piece itself counts toward freezing it."""
        record = run.record
        log.info("job=%s failed: %s", record.id, reason)
        if not await self.finish(run, JobState.FAILED, note=reason, error=reason):
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

    async def finish(self, run: Run, state: JobState, *, note: str | None = None,
                     **fields: Any) -> bool:
        if not await self._move(run, state, note=note, stage=None, **fields):
            return False
        metrics.GRABS.labels(format=run.grab.format.value, outcome=state.value).inc()
        self.book.forget(run)
        self.finished(run.record)
        return True

    def finished(self, record: JobRecord) -> None:
        """A job reached a final state through this instance: answer and announce it."""
        self.book.finished(record)
        self.watchers.notify(record.id)
        self.callbacks.final(record)

    async def park(self, run: Run, exc: UploadPending) -> None:
        """Storage is down: keep the encoded file and the job's lease, retry the upload."""
        log.warning("job=%s waits for storage: %s", run.record.id, exc)
        if not await self._move(run, JobState.UPLOAD_PENDING, note=str(exc), stage="upload",
                                error=str(exc), result=exc.facts, timings=exc.timings,
                                lease_expires_at=time.time() + self.settings.cluster.lease_s):
            return
        if self.book.runs.get(run.record.id) is run:
            del self.book.runs[run.record.id]
        self.book.pending_uploads[run.record.id] = run
        self.book.gauge()
        if run.cancel_requested:  # a cancel arrived while the attempt ended in parking
            await self.cancel_parked(run)

    # -- writes under the lease -----------------------------------------------------------------

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
            self.book.forget(run)
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
                if self.book.stopping:
                    raise
                log.warning("the store is unreachable (%s); writing again in %.1f s", exc,
                            delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- parked uploads -------------------------------------------------------------------------

    async def retry_parked(self) -> None:
        """One round over the jobs parked in upload_pending here: upload each again."""
        for job_id, run in list(self.book.pending_uploads.items()):
            if self.book.pending_uploads.get(job_id) is not run:
                continue  # cancelled or taken over while an earlier upload ran
            try:
                await self._retry_upload(run)
            except Exception as exc:
                # One job's trouble must not end the loop that serves every parked job; a
                # failure nobody foresaw will not mend itself, so the job fails with it.
                log.exception("job=%s: retrying its parked upload failed", job_id)
                await self._fail_parked(run, f"its parked upload failed: {exc!r}")

    async def _retry_upload(self, run: Run) -> None:
        record, fmt = run.record, run.grab.format
        path = self.pipeline.pending_path(record.id, fmt)
        if not path.exists():
            await self.finish(run, JobState.FAILED, error="the encoded file waiting for "
                              "upload was lost")
            return
        run.uploading = True
        try:
            stored = await self.pipeline.upload(
                record.id, record.capture_key, fmt, path, fmt.content_type, {})
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
            await self.cancel_parked(run)
            return
        if stored is None:
            return
        path.unlink(missing_ok=True)
        result = {**(record.result or {}), **stored}  # the capture facts kept at parking
        await self.complete(run, result, dict(record.timings))

    async def _fail_parked(self, run: Run, reason: str) -> None:
        try:
            await self.finish(run, JobState.FAILED, note=reason, error=reason)
        except Exception:
            log.exception("job=%s: could not record its failure; retried next round",
                          run.record.id)
            return
        self.drop_parked_file(run)

    async def cancel_parked(self, run: Run) -> None:
        """Cancel a job parked in upload_pending here: its kept file goes with it."""
        await self.finish(run, JobState.CANCELLED, note="cancelled by a client")
        self.drop_parked_file(run)

    def drop_parked_file(self, run: Run) -> None:
        path = self.pipeline.pending_path(run.record.id, run.grab.format)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:  # cleanup must never take the loop that called it down with it
            log.warning("job=%s: could not remove its parked file %s: %s", run.record.id, path,
                        exc)
