"""BrowserPool actor: one Chromium with N warm pages, recycled by count, health, crash or demand."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oven import _metrics as metrics
from oven._readiness import ReadinessBoard
from oven.actors._async import AsyncActor
from oven.actors._base import ActorContext
from oven.capture import (
    Browser,
    BrowserGone,
    BrowserSettings,
    CaptureRequest,
    CaptureResult,
    PieceError,
    Slot,
    capture,
    new_marker,
    sweep_orphans,
)
from oven.config import Settings

log = logging.getLogger(__name__)


class MemoryBudgetExceeded(PieceError):
    """The job's page grew past what the memory budget allows (permanent: counts to freezing)."""


class CaptureTimeout(Exception):
    """The capture did not finish before the job's deadline (transient: a retry may succeed)."""


@dataclass(frozen=True)
class Capture:
    job_id: str
    request: CaptureRequest
    out_dir: Path
    timeout_s: float
    progress_to: str | None = None  # actor told CaptureStage messages, by name


@dataclass(frozen=True)
class CaptureStage:
    """Told to the requester as a capture moves on to `ready` and `capture`."""

    job_id: str
    stage: str


@dataclass(frozen=True)
class CancelCapture:
    """Stop a job's capture now; its page context is closed by the capture's own cleanup."""

    job_id: str


@dataclass(frozen=True)
class Recycle:
    reason: str


@dataclass(frozen=True)
class SlotHeaps:
    """Ask (MemoryWatch): JS heap bytes of each running capture, by job id."""


@dataclass(frozen=True)
class FailForMemory:
    """Stop this job's capture and fail it with MemoryBudgetExceeded."""

    job_id: str
    detail: str


@dataclass(frozen=True)
class LimitPages:
    """Memory pressure: run at most `pages` slots (None: back to the configured size)."""

    pages: int | None


@dataclass(frozen=True)
class PoolStatus:
    """Ask: a snapshot for /status and the dashboard."""


class BrowserPool(AsyncActor):
    """Owns Playwright and Chromium on the actor's loop (Playwright objects are loop-bound).

    Captures wait while the browser is (re)starting. A recycle stops new captures, lets running
    ones finish (a crash fails them with BrowserGone, which the GrabQueue retries), closes the
    browser (killing Chromium's process group) and launches a new one.
    """

    start_timeout_s = 60.0

    def __init__(self, ctx: ActorContext, settings: Settings, board: ReadinessBoard) -> None:
        super().__init__(ctx)
        self.settings: BrowserSettings = with_self_blocked(settings)
        self.board = board
        self.browser: Browser | None = None
        self.in_flight = 0
        self.restarts = 0
        self.started_at = 0.0
        self._up: asyncio.Event | None = None
        self._recycling: asyncio.Task[None] | None = None
        self._health: asyncio.Task[None] | None = None
        self._by_job: dict[str, asyncio.Task[Any]] = {}
        self._slot_of_job: dict[str, Slot] = {}
        self._over_budget: dict[str, str] = {}
        self._pages_limit: int | None = None
        # A hung actor cannot close its browser; the supervisor calls this from its thread.
        ctx.processes.add_killer(self._kill_browser)

    def _kill_browser(self) -> None:
        if self.browser is not None:
            self.browser.kill()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start_async(self) -> None:
        swept = await asyncio.to_thread(sweep_orphans)
        if swept:
            log.warning(
                "killed %d orphaned chromium trees left by a dead oven: %s", len(swept), swept
            )
        self._up = asyncio.Event()
        await self._launch()
        self._health = asyncio.get_running_loop().create_task(self._watch_health())

    async def stop_async(self) -> None:
        if self._health is not None:
            self._health.cancel()
        if self.browser is not None:
            await self.browser.close(timeout_s=self.settings.close_timeout_s)
            self.browser = None
        metrics.POOL_SIZE.set(0)

    async def _launch(self) -> None:
        assert self._up is not None
        self.board.set("browser", "starting")
        self.browser = await Browser.launch(self.settings, marker=new_marker())
        self.started_at = time.monotonic()
        metrics.POOL_SIZE.set(self.browser.size)
        metrics.JOBS_SINCE_RESTART.set(0)
        self.board.clear("browser")
        self._up.set()

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
                return self.defer(self._recycle(reason))
            case PoolStatus():
                return self.defer(self._status())
            case SlotHeaps():
                return self.defer(self._heaps())
            case FailForMemory(job_id=job_id, detail=detail):
                return self.defer(self._fail_for_memory(job_id, detail))
            case LimitPages(pages=pages):
                self._pages_limit = pages
                return self.defer(self._resize(self._effective_pages()))
        return super().receive(message)

    async def _cancel(self, job_id: str) -> bool:
        task = self._by_job.get(job_id)
        if task is None:
            return False
        task.cancel()
        return True

    async def _capture(self, job: Capture) -> CaptureResult:
        assert self._up is not None
        deadline = time.monotonic() + job.timeout_s
        task = asyncio.current_task()
        if task is not None:
            self._by_job[job.job_id] = task
        try:
            async with asyncio.timeout(job.timeout_s):
                await self._up.wait()
                browser = self.browser
                assert browser is not None
                self.in_flight += 1
                metrics.PAGES_IN_USE.set(self.in_flight)
                try:
                    async with browser.page_slot(
                        timeout_s=max(0.1, deadline - time.monotonic())
                    ) as slot:
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
            detail = self._over_budget.pop(job.job_id, None)
            if detail is not None:
                raise MemoryBudgetExceeded(f"memory budget exceeded: {detail}") from None
            raise
        except BrowserGone:
            self._recycle_if_needed(self.browser, fallback="crash")
            raise
        except TimeoutError:
            if self.browser is not None and self.browser.needs_recycle:
                self._recycle_if_needed(self.browser)
            raise CaptureTimeout(
                f"capture of job {job.job_id} did not finish within {job.timeout_s:.1f} s"
            ) from None
        finally:
            self._by_job.pop(job.job_id, None)

    async def _heaps(self) -> dict[str, int]:
        heaps = {}
        for job_id, slot in list(self._slot_of_job.items()):
            try:
                usage = await asyncio.wait_for(slot.cdp.send("Runtime.getHeapUsage"), 1.0)
            except Exception:  # the page is closing or busy: no figure this time
                continue
            heaps[job_id] = int(usage.get("usedSize", 0) + usage.get("backingStorageSize", 0))
        return heaps

    async def _fail_for_memory(self, job_id: str, detail: str) -> bool:
        task = self._by_job.get(job_id)
        if task is None:
            return False
        self._over_budget[job_id] = detail
        task.cancel()
        return True

    def _effective_pages(self) -> int:
        pages = self.settings.pages
        return pages if self._pages_limit is None else max(1, min(pages, self._pages_limit))

    def _progress(self, job: Capture, stage: str) -> None:
        if job.progress_to is None:
            return
        try:
            self.ctx.lookup.ref(job.progress_to).tell(CaptureStage(job.job_id, stage))
        except Exception as exc:  # progress is best effort: a busy or restarting peer skips it
            log.debug("stage %s of job=%s not delivered: %s", stage, job.job_id, exc)

    def _recycle_if_needed(self, browser: Browser | None, *, fallback: str | None = None) -> None:
        if browser is None or browser is not self.browser:
            return  # already replaced
        reason = browser.recycle_reason if browser.needs_recycle else fallback
        if reason is None or (self._recycling is not None and not self._recycling.done()):
            return
        self._recycling = asyncio.get_running_loop().create_task(self._recycle(reason))

    async def _recycle(self, reason: str) -> None:
        assert self._up is not None
        old = self.browser
        self._up.clear()
        self.board.set("browser", f"recycling: {reason}")
        label = _reason_label(reason)
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
        for attempt in range(1, 4):
            try:
                await self._launch()
                return
            except Exception as exc:
                log.error("browser relaunch %d failed: %s", attempt, exc)
                await asyncio.sleep(0.5 * attempt)
        # Three failed launches: let the supervisor restart the whole actor.
        raise RuntimeError("browser could not be relaunched")

    async def _watch_health(self) -> None:
        failures = 0
        while True:
            await asyncio.sleep(self.settings.health_interval_s)
            browser = self.browser
            if browser is None or (self._recycling is not None and not self._recycling.done()):
                continue
            if await browser.health(self.settings.health_timeout_s):
                failures = 0
                continue
            failures += 1
            log.warning("browser health probe failed (%d in a row)", failures)
            if failures >= 2:
                failures = 0
                browser.mark_recycle("health probe failed twice")
                self._recycle_if_needed(browser)

    async def _status(self) -> dict[str, Any]:
        browser = self.browser
        return {
            "state": "running" if browser is not None and browser.is_connected else "starting",
            "pages": self.settings.pages,
            "in_use": self.in_flight,
            "jobs_since_restart": browser.jobs_done if browser else 0,
            "restarts": self.restarts,
            "pids": browser.pids() if browser else {},
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


def _reason_label(reason: str) -> str:
    """A small, fixed label set for the metric; the full reason goes to the log."""
    for needle, label in (
        ("restart_after", "restart_after"),
        ("disconnected", "crash"),
        ("crash", "crash"),
        ("health", "health"),
        ("hung", "hung_page"),
        ("memory", "memory"),
    ):
        if needle in reason:
            return label
    return "other"
