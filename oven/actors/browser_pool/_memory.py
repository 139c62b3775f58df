"""The pool's part in holding pages to memory: the ceiling plan and its renderer watch, the
JS heaps MemoryWatch asks for, captures failed over the budget, pages limited under pressure,
and sorting out why a capture lost its browser.

MemoryWatch decides (budget, pressure); this room acts on its pages: a FailForMemory cancels
the job's capture and the capture answers MemoryBudgetExceeded; a LimitPages shrinks the pool.
A browser that falls under a capture is oven's recycle (BrowserRecycled), the fall of Chromium
right after a renderer was killed over its ceiling (BrowserLostToMemoryKill: both retried with
the attempt given back), or a crash (BrowserGone).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from oven.actors.browser_pool._messages import MemoryBudgetExceeded
from oven.capture import Browser, BrowserGone, BrowserRecycled, BrowserState, Slot
from oven.memory import CgroupReader, MemorySettings, RendererWatch, memory_budget, plan_ceilings

log = logging.getLogger(__name__)


class PageMemory:
    def __init__(self, settings: MemorySettings) -> None:
        self.settings = settings
        self.watch: RendererWatch | None = None
        self._over_budget: dict[str, str] = {}  # job id → why MemoryWatch stopped its capture
        self._pages_limit: int | None = None

    async def plan(self, pages: int) -> None:
        self.watch = await asyncio.to_thread(self._plan, pages)

    def _plan(self, pages: int) -> RendererWatch:
        """Decide how each page is held to its memory ceiling here (see oven.memory)."""
        reader = CgroupReader.detect()
        budget, source = memory_budget(self.settings,
                                       reader.read() if reader is not None else None)
        plan, cgroup = plan_ceilings(self.settings, budget=budget, pages=pages, reader=reader)
        log.info("page memory ceiling %d MB by %s: %s (budget %d MB, %s)",
                 plan.page_ceiling >> 20, plan.mechanism, plan.reason, budget >> 20, source)
        return RendererWatch(plan, cgroup, interval_s=self.settings.ceiling_poll_interval_s)

    @property
    def launch_watch(self) -> RendererWatch | None:
        """The watch a new browser is handed, unless ceilings are off here."""
        if self.watch is not None and self.watch.plan.mechanism != "off":
            return self.watch
        return None

    def halt(self) -> None:
        """From any thread (a hung actor's processes are being killed)."""
        if self.watch is not None:
            self.watch.halt()

    async def stop(self) -> None:
        if self.watch is not None:
            await asyncio.to_thread(self.watch.stop)

    def status(self, pages: int) -> dict[str, Any] | None:
        return {"pages": pages, **self.watch.status()} if self.watch is not None else None

    # -- MemoryWatch's asks ---------------------------------------------------------------------

    def limit_pages(self, pages: int | None) -> None:
        self._pages_limit = pages

    def effective_pages(self, pages: int) -> int:
        return pages if self._pages_limit is None else max(1, min(pages, self._pages_limit))

    def fail(self, job_id: str, detail: str) -> None:
        """Mark the job's capture as stopped over the budget (its task is cancelled next)."""
        self._over_budget[job_id] = detail

    def over_budget(self, job_id: str) -> MemoryBudgetExceeded | None:
        """The error a cancelled capture answers with, if MemoryWatch stopped it."""
        detail = self._over_budget.pop(job_id, None)
        if detail is None:
            return None
        return MemoryBudgetExceeded(f"memory budget exceeded: {detail}")

    @staticmethod
    async def heaps(slots: dict[str, Slot]) -> dict[str, int]:
        """JS heap bytes of each running capture, by job id."""
        heaps = {}
        for job_id, slot in list(slots.items()):
            try:
                async with asyncio.timeout(1.0):
                    usage = await slot.cdp.send("Runtime.getHeapUsage")
            except Exception:  # the page is closing or busy: no figure this time
                continue
            heaps[job_id] = int(usage.get("usedSize", 0) + usage.get("backingStorageSize", 0))
        return heaps


def lost_browser_error(exc: BrowserGone, browser: Browser | None) -> BrowserGone | None:
    """What a capture that lost `browser` answers instead of a plain BrowserGone, if anything."""
    if type(exc) is not BrowserGone or browser is None:
        return None
    if browser.state is not BrowserState.RUNNING and browser.is_closed_by_owner:
        # Closed by a recycle of ours while this capture ran: oven's doing.
        return BrowserRecycled(f"{exc} (the browser was recycled: {browser.recycle_reason})")
    # A job still waiting for a page of a Chromium that a memory kill took down is as innocent
    # as one that had its page (see Browser.lost).
    lost = browser.lost_to_memory_kill(str(exc))
    return lost if type(lost) is not BrowserGone else None
