"""BrowserPool actor: one Chromium with N warm pages, recycled by count, health, crash or demand.

Its parts, beside it in this room: _relaunch (a recycle that cannot launch a new Chromium:
backoff, readiness, giving up into the supervisor) and _memory (page ceilings, heaps, captures
failed over the budget, pages limited under pressure, why a capture lost its browser).
Messages: Capture, CancelCapture, Recycle, PoolStatus from the grab queue and HTTP; SlotHeaps,
FailForMemory, LimitPages from MemoryWatch; a Capture's on_stage called as it moves on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from oven import metrics
from oven.actors.browser_pool._memory import PageMemory, lost_browser_error
from oven.actors.browser_pool._messages import (
    CancelCapture,
    Capture,
    CaptureTimeout,
    FailForMemory,
    LimitPages,
    PoolStatus,
    Recycle,
    SlotHeaps,
)
from oven.actors.browser_pool._relaunch import (
    RelaunchPolicy,
    launch_error,
    reason_label,
    relaunch,
)
from oven.actors.runtime import ActorContext, AsyncActor, lower_thread_priority
from oven.capture import (
    Browser,
    BrowserGone,
    BrowserSettings,
    CaptureResult,
    Slot,
    capture,
    new_marker,
    sweep_orphans,
)
from oven.config import Settings
from oven.readiness import ReadinessBoard

log = logging.getLogger(__name__)


class BrowserPool(AsyncActor):
    """Owns Playwright and Chromium on the actor's loop (Playwright objects are loop-bound).

    Captures wait (within their deadline) while the browser is (re)starting, and fail at once
    while relaunches are failing. A recycle stops new captures, lets running ones finish (a
    crash fails them with BrowserGone, which the GrabQueue retries), closes the browser
    (killing Chromium's process group) and launches a new one.
    """

    start_timeout_s = 60.0
    relaunch_backoff_initial_s = 0.5
    relaunch_backoff_max_s = 15.0
    relaunch_give_up_s = 120.0

    def __init__(self, ctx: ActorContext, settings: Settings, board: ReadinessBoard) -> None:
        super().__init__(ctx)
        self.settings: BrowserSettings = with_self_blocked(settings)
        self.memory = PageMemory(settings.memory)
        self.board = board
        self.browser: Browser | None = None
        self.in_flight = 0
        self.restarts = 0
        self.started_at = 0.0
        self._serving = False  # a browser is up and takes captures
        self._changed: asyncio.Condition | None = None  # _serving or _relaunch_error changed
        self._relaunch_error: str | None = None  # why the last launch failed, while failing
        self._relaunch_attempts = 0
        self._by_job: dict[str, asyncio.Task[Any]] = {}
        self._slot_of_job: dict[str, Slot] = {}
        # A hung actor cannot close its browser; the supervisor calls this from its thread.
        ctx.processes.add_killer(self._kill_browser)

    def _kill_browser(self) -> None:
        if self.browser is not None:
            self.browser.kill()
        self.memory.halt()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start_async(self) -> None:
        # Playwright's driver, and Chromium it starts, inherit this loop thread's niceness.
        lower_thread_priority(self.settings.nice)
        self._changed = asyncio.Condition()
        self.board.set("browser", "starting")
        swept = await asyncio.to_thread(sweep_orphans)
        if swept:
            log.warning(
                "killed %d orphaned chromium trees left by a dead oven: %s", len(swept), swept
            )
        await self.memory.plan(self.settings.pages)
        try:
            await self._launch()
        except Exception as exc:
            self._relaunch_error = launch_error(exc)
            raise
        self.own("health", self._watch_health)

    async def stop_async(self) -> None:
        await self._set_serving(False)
        if self.browser is not None:
            await self.browser.close(timeout_s=self.settings.close_timeout_s)
            self.browser = None
        await self.memory.stop()
        metrics.POOL_SIZE.set(0)
        # Stopped or crashed, this pool runs no browser: never let /ready say otherwise.
        why = f": {self._relaunch_error}" if self._relaunch_error else ""
        self.board.set("browser", f"browser pool stopped{why}")

    async def _launch(self) -> None:
        self.browser = await Browser.launch(self.settings, marker=new_marker(),
                                            watch=self.memory.launch_watch)
        self.started_at = time.monotonic()
        metrics.POOL_SIZE.set(self.browser.size)
        metrics.JOBS_SINCE_RESTART.set(0)
        self._relaunch_error, self._relaunch_attempts = None, 0
        self.board.clear("browser")
        await self._set_serving(True)

    async def _set_serving(self, serving: bool, *, error: str | None = None) -> None:
        assert self._changed is not None
        async with self._changed:
            self._serving = serving
            if error is not None:
                self._relaunch_error = error
            self._changed.notify_all()

    async def _browser_up(self) -> Browser:
        """The running browser; waits while one is starting, fails fast while none can start."""
        assert self._changed is not None
        async with self._changed:
            await self._changed.wait_for(
                lambda: self._serving or self._relaunch_error is not None)
        if not self._serving or self.browser is None:
            raise BrowserGone(f"no browser: relaunch failing: {self._relaunch_error}")
        return self.browser

    def reconfigure(self, settings: Any) -> None:
        self.settings = with_self_blocked(settings)
        if self.browser is not None:
            self.spawn(self._resize(self._effective_pages()))

    async def _resize(self, pages: int) -> None:
        if self.browser is not None and self.browser.size != pages:
            await self.browser.resize(pages)
            metrics.POOL_SIZE.set(pages)
            log.info("page pool resized to %d", pages)

    # -- messages -------------------------------------------------------------------------------

    def receive(self, message: Any) -> Any:
        match message:
            case Capture():
                return self.defer(self._capture(message))
            case CancelCapture(job_id=job_id):
                return self.defer(self._cancel(job_id))
            case Recycle(reason=reason):
                return self.defer(self._recycle_on_request(reason))
            case PoolStatus():
                return self.defer(self._status())
            case SlotHeaps():
                return self.defer(self.memory.heaps(self._slot_of_job))
            case FailForMemory(job_id=job_id, detail=detail):
                return self.defer(self._fail_for_memory(job_id, detail))
            case LimitPages(pages=pages):
                self.memory.limit_pages(pages)
                return self.defer(self._resize(self._effective_pages()))
        return super().receive(message)

    async def _cancel(self, job_id: str) -> bool:
        task = self._by_job.get(job_id)
        if task is None:
            return False
        task.cancel()
        return True

    async def _capture(self, job: Capture) -> CaptureResult:
        deadline = time.monotonic() + job.timeout_s
        task = asyncio.current_task()
        if task is not None:
            self._by_job[job.job_id] = task
        in_page, page_at = False, 0.0
        browser: Browser | None = None
        try:
            async with asyncio.timeout(job.timeout_s):
                browser = await self._browser_up()
                self.in_flight += 1
                metrics.PAGES_IN_USE.set(self.in_flight)
                try:
                    async with browser.page_slot(
                        timeout_s=max(0.1, deadline - time.monotonic()), before_wipe=True
                    ) as slot:
                        in_page, page_at = True, time.monotonic()
                        self._slot_of_job[job.job_id] = slot
                        return await capture(slot, job.request, job.out_dir,
                                             on_stage=lambda stage: self._progress(job, stage))
                finally:
                    self._slot_of_job.pop(job.job_id, None)
                    self.in_flight -= 1
                    metrics.PAGES_IN_USE.set(self.in_flight)
                    metrics.JOBS_SINCE_RESTART.set(browser.jobs_done)
                    self._recycle_if_needed(browser)
        except asyncio.CancelledError:
            over_budget = self.memory.over_budget(job.job_id)
            if over_budget is not None:
                raise over_budget from None
            raise
        except BrowserGone as exc:
            self._recycle_if_needed(self.browser, fallback="crash")
            lost = lost_browser_error(exc, browser)
            if lost is not None:
                raise lost from exc
            raise
        except TimeoutError:
            if self.browser is not None and self.browser.needs_recycle:
                self._recycle_if_needed(self.browser)
            waited = "" if in_page else " (it was still waiting for a browser or a page)"
            raise CaptureTimeout(
                f"capture of job {job.job_id} did not finish within {job.timeout_s:.1f} s"
                f"{waited}", in_page=in_page,
                in_page_s=time.monotonic() - page_at if in_page else 0.0) from None
        finally:
            self._by_job.pop(job.job_id, None)

    async def _fail_for_memory(self, job_id: str, detail: str) -> bool:
        task = self._by_job.get(job_id)
        if task is None:
            return False
        self.memory.fail(job_id, detail)
        task.cancel()
        return True

    def _effective_pages(self) -> int:
        return self.memory.effective_pages(self.settings.pages)

    def _progress(self, job: Capture, stage: str) -> None:
        if job.on_stage is None:
            return
        try:
            job.on_stage(stage)
        except Exception as exc:  # progress is best effort: a stopped caller skips it
            log.debug("stage %s of job=%s not delivered: %s", stage, job.job_id, exc)

    def _recycle_if_needed(self, browser: Browser | None, *, fallback: str | None = None) -> None:
        if browser is None or browser is not self.browser or self.closing:
            return  # already replaced, or stopping (closing the browser fails its captures)
        reason = browser.recycle_reason if browser.needs_recycle else fallback
        if reason is None or self.owned("recycle") is not None:
            return
        self._start_recycle(reason)

    def _start_recycle(self, reason: str) -> None:
        # Not serving from now on, before the task first runs: no capture may start on a
        # browser that is about to be closed.
        self._serving = False
        self.board.set("browser", f"recycling: {reason}")
        self.own("recycle", lambda: self._recycle(reason))

    async def _recycle_on_request(self, reason: str) -> bool:
        """Recycle now (unless one is under way); answer once a browser serves again."""
        assert self._changed is not None
        if self.owned("recycle") is None:
            self._start_recycle(reason)
        async with self._changed:
            await self._changed.wait_for(
                lambda: self._serving or self._relaunch_error is not None)
        if not self._serving:
            raise BrowserGone(f"no browser: relaunch failing: {self._relaunch_error}")
        return True

    async def _recycle(self, reason: str) -> None:
        old = self.browser
        await self._set_serving(False)
        label = reason_label(reason)
        log.warning("recycling the browser (%s) with %d captures in flight", reason, self.in_flight)
        metrics.BROWSER_RESTARTS.labels(reason=label).inc()
        self.restarts += 1
        if old is not None:
            # Running captures keep their pages until they finish or the deadline passes;
            # closing kills Chromium's whole process group either way.
            for _ in range(100):
                if self.in_flight == 0 or not old.is_connected:
                    break
                await asyncio.sleep(0.05)
            await old.close(timeout_s=self.settings.close_timeout_s)
        self.browser = None
        await self._relaunch()

    async def _relaunch(self) -> None:
        policy = RelaunchPolicy(self.relaunch_backoff_initial_s, self.relaunch_backoff_max_s,
                                self.relaunch_give_up_s)
        await relaunch(self._launch, policy, failed=self._relaunch_failed)

    async def _relaunch_failed(self, attempt: int, error: str, delay: float | None) -> None:
        self._relaunch_attempts = attempt
        if delay is None:
            return  # giving up: the pool crashes into its supervisor
        await self._set_serving(False, error=error)
        self.board.set("browser", f"relaunch failing (attempt {attempt}, next in "
                                  f"{delay:.1f} s): {error}")

    async def _watch_health(self) -> None:
        failures = 0
        while True:
            await asyncio.sleep(self.settings.health_interval_s)
            browser = self.browser
            if browser is None or self.owned("recycle") is not None:
                continue
            if await browser.health(self.settings.health_timeout_s):
                failures = 0
                continue
            if browser is not self.browser or not browser.is_connected:
                # It went away (before or while the probe ran): a crash, not a probe failure.
                # A capture that loses it starts the recycle; with none running, this does.
                failures = 0
                self._recycle_if_needed(browser, fallback="chromium disconnected")
                continue
            failures += 1
            log.warning("browser health probe failed (%d in a row)", failures)
            if failures >= 2:
                failures = 0
                browser.mark_recycle("health probe failed twice")
                self._recycle_if_needed(browser)

    async def _status(self) -> dict[str, Any]:
        browser = self.browser
        if self._relaunch_error is not None:
            state = "relaunch_failing"
        elif self.owned("recycle") is not None:
            state = "recycling"
        elif self._serving and browser is not None and browser.is_connected:
            state = "running"
        else:
            state = "starting"
        return {
            "state": state,
            "relaunch_attempts": self._relaunch_attempts,
            "relaunch_error": self._relaunch_error,
            "pages": self.settings.pages,
            "in_use": self.in_flight,
            "jobs_since_restart": browser.jobs_done if browser else 0,
            "restarts": self.restarts,
            "pids": browser.pids() if browser else {},
            "memory_ceiling": self.memory.status(self.settings.pages),
        }


def self_patterns(host: str, port: int) -> list[str]:
    """URL patterns of oven's own HTTP server: a piece must not drive the service it runs in."""
    hosts = {host, "127.0.0.1", "localhost", "[::1]"} if host in ("0.0.0.0", "::", "127.0.0.1",
                                                                   "localhost") else {host}
    return sorted(f"*://{h}:{port}/*" for h in hosts)


def with_self_blocked(settings: Settings) -> BrowserSettings:
    browser = settings.browser
    extra = [p for p in self_patterns(settings.server.host, settings.server.port)
             if p not in browser.blocked_url_patterns]
    return browser.model_copy(update={"blocked_url_patterns": [*browser.blocked_url_patterns,
                                                               *extra]})
