"""The jobs one instance runs: claiming them for free page slots, running each through the
pipeline, and handing its outcome to the settler; renewing the leases of the jobs held.

A job here goes: claimed (`queued` → `running`, under a lease, a page slot taken) → its attempt
(frozen piece check, then the pipeline: capture → encode → upload; the page slot is freed as
soon as the capture is done) → settled (see _settle) → forgotten here, its waiters woken.
A cancel stops the attempt and the hop it is in (page, ffmpeg); a stop of the actor leaves the
job `running` under this instance's name, requeued at its next start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from oven import metrics
from oven.actors.browser_pool import CancelCapture
from oven.actors.encoder import CancelEncode
from oven.actors.grab_queue._book import Book, Run, parse_request
from oven.actors.grab_queue._lease import LeaseKeeper
from oven.actors.grab_queue._pipeline import Outcome, Permanent, Pipeline, Transient, UploadPending
from oven.actors.grab_queue._settle import Settler
from oven.actors.runtime import AskTimeout, ask_async
from oven.actors.store import StoreClient
from oven.config import Settings
from oven.jobs import JobState
from oven.lanes import claimable_lanes
from oven.readiness import ReadinessBoard
from oven.store import JobRecord, StoreUnavailable
from oven.supervisor import ActorUnavailable

log = logging.getLogger(__name__)


class TaskOwner(Protocol):
    """Who owns the tasks the runner starts (the GrabQueue, as an AsyncActor): stop cancels
    them all together."""

    @property
    def closing(self) -> bool: ...

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> None: ...

    def own(self, name: str, factory: Callable[[], Coroutine[Any, Any, None]]
            ) -> asyncio.Task[None]: ...

    def owned(self, name: str) -> asyncio.Task[None] | None: ...


def _log_run_end(task: asyncio.Task[None]) -> None:
    """A run's task is owned by its Run; an exception escaping it is a bug worth an ERROR line
    (the run itself was already forgotten in its `finally`)."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("%s ended with an unexpected error", task.get_name(), exc_info=exc)


class JobRunner:
    def __init__(self, book: Book, store: StoreClient, leases: LeaseKeeper, pipeline: Pipeline,
                 settler: Settler, tasks: TaskOwner, *, lookup: Any, board: ReadinessBoard,
                 settings: Settings) -> None:
        self.book = book
        self.store = store
        self.leases = leases
        self.pipeline = pipeline
        self.settler = settler
        self.tasks = tasks
        self.lookup = lookup
        self.board = board
        self.settings = settings
        # Fixed at start, like the tree it runs in: a reload that changes the role needs a
        # restart (an api claiming work with no browser to run it would fail every job).
        self.claims = settings.cluster.role != "api"
        self._claim_again = False

    # -- claiming -------------------------------------------------------------------------------

    def kick(self) -> None:
        """Claim work for free page slots, now or as soon as the claim under way returns."""
        if not self.claims:
            return  # an api admits and answers; worker instances claim and run
        self._claim_again = True
        if not (self.book.stopping or self.tasks.closing) and self.tasks.owned("claim") is None:
            self.tasks.own("claim", self._claim)

    async def _claim(self) -> None:
        book = self.book
        while self._claim_again and not book.stopping:
            self._claim_again = False
            # Any reason this instance is not ready (memory pressure, a browser that is down
            # or restarting, an unreachable store) is a reason not to take work others could
            # run; "full" is about admission, not about running.
            while not book.stopping and not (set(self.board.reasons()) - {"full"}):
                pages = self.settings.browser.pages
                free = pages - book.capturing
                if free <= 0:
                    break
                lanes = claimable_lanes(free=free, pages=pages, queue=self.settings.queue)
                book.capturing += 1  # the slot is ours while the claim is in flight
                try:
                    record = await self.leases.claim(lanes)
                except Exception as exc:
                    book.capturing -= 1
                    log.warning("claiming a job failed: %s", exc)
                    return  # the next poll tries again
                if record is None:
                    book.capturing -= 1
                    break
                self._start(record)
        book.gauge()

    def _start(self, record: JobRecord) -> None:
        self.book.left_queue(record.id)
        try:
            grab, target = parse_request(record)
        except Exception as exc:  # a record this version cannot read: fail it, not the actor
            self.book.capturing -= 1
            self.tasks.spawn(self._fail_unreadable(record, exc))
            return
        run = Run(record, grab, target)
        self.book.runs[record.id] = run
        run.task = asyncio.get_running_loop().create_task(self._run(run), name=f"run {record.id}")
        run.task.add_done_callback(_log_run_end)

    async def _fail_unreadable(self, record: JobRecord, exc: Exception) -> None:
        reason = f"the stored request cannot be read: {exc}"
        record = await self.store.transition(record.id, JobState.FAILED, note=reason,
                                             error=reason, expect_owner=self.book.instance,
                                             expect_claim=record.claim)
        self.settler.finished(record)

    def _page_free(self, run: Run) -> None:
        if run.holds_page:
            run.holds_page = False
            self.book.capturing -= 1
            self.kick()

    # -- one run --------------------------------------------------------------------------------

    async def _run(self, run: Run) -> None:
        """The life of one claimed job: its attempt, then its outcome settled in the store.
        Whatever happens, the run is forgotten at the end (and its waiters woken)."""
        record, settler = run.record, self.settler
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
                if self.book.stopping or (task is not None and task.cancelling()):
                    raise  # shutdown: the job stays `running` and is requeued at the next start
                self._page_free(run)
                if not run.lease_lost:  # else another instance runs it now
                    await settler.finish(run, JobState.CANCELLED, note="cancelled by a client")
                return
            # A failed attempt keeps its page slot until its outcome is settled: the next
            # claim then sees a freeze this failure caused, instead of capturing the piece again.
            except Transient as exc:
                if await settler.retry_or_fail(run, exc):
                    self.kick()
                return
            except Permanent as exc:
                await settler.fail(run, str(exc), blame_piece=exc.piece_fault)
                return
            except UploadPending as exc:
                await settler.park(run, exc)
                return
            except Exception as exc:
                log.exception("job=%s failed unexpectedly", record.id)
                await settler.fail(run, f"internal error: {exc!r}")  # oven's, not the piece's
                return
            await settler.complete(run, outcome.result, outcome.timings)
        finally:
            self._page_free(run)
            if run.record.state is not JobState.UPLOAD_PENDING or run.lease_lost:
                self.book.forget(run)

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

    async def stop_run(self, run: Run) -> None:
        """Cancel a running job's attempt and stop its hop where it runs (page, ffmpeg).
        Idempotent; once the attempt has ended, its outcome is being settled and stands."""
        if run.attempt is None or run.attempt.done():
            return
        run.attempt.cancel()
        for name, message in (("browser", CancelCapture(run.record.id)),
                              ("encoder", CancelEncode(run.record.id))):
            try:
                await ask_async(self.lookup.ref(name), message, timeout=5)
            except Exception as exc:
                log.warning("cancel job=%s: %s did not confirm: %s", run.record.id, name, exc)

    def stop(self) -> None:
        """The actor stops: claim nothing more, and cancel every run (each stays `running`
        with our name on it: requeued when this instance starts again, or by another instance
        once its lease runs out)."""
        self.book.stopping = True
        for run in list(self.book.runs.values()):
            if run.task is not None:
                run.task.cancel()

    # -- leases of the jobs held ----------------------------------------------------------------

    def _still_held(self, run: Run) -> bool:
        """Whether a run the store would not renew is still ours to call lost. A run settled
        while its renewal was on the way (forgotten, or its attempt over and its outcome being
        written) is not: its own settle writes under the claim and finds a real loss itself."""
        book = self.book
        if book.pending_uploads.get(run.record.id) is run:
            return True
        if book.runs.get(run.record.id) is not run:
            return False
        return run.attempt is None or not run.attempt.done()

    async def renew_leases(self) -> None:
        """One heartbeat: renew the lease of every job held here; stop those lost."""
        book = self.book
        held = [run for run in (*book.runs.values(), *book.pending_uploads.values())
                if not run.record.state.is_final]
        try:
            lost = await self.leases.renew([(run.record.id, run.claim) for run in held])
        except Exception as exc:
            log.warning("renewing leases failed (%s); retrying in %.0f s", exc,
                        self.settings.cluster.heartbeat_s)
            return
        for run in held:
            if run.record.id not in lost or not self._still_held(run):
                continue
            log.warning("job=%s: lease lost (another instance took it over); stopping here",
                        run.record.id)
            metrics.LEASES_LOST.labels(instance_id=book.instance).inc()
            run.lease_lost = True
            if book.pending_uploads.get(run.record.id) is run:
                self.settler.drop_parked_file(run)
                book.forget(run)
            else:
                await self.stop_run(run)
