"""One Playwright driver, one Chromium, N page slots: the async engine the BrowserPool actor wraps.

All methods run on the loop that launched the browser (Playwright objects are bound to it), except
`kill()` and `pids()`, which only touch OS processes and are safe from any thread. How a browser
is started and its processes placed is _launch; why a renderer or Chromium died is _deaths.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import Browser as PWBrowser
from playwright.async_api import BrowserContext, CDPSession, Playwright, Route, ViewportSize

from oven.capture import _processes
from oven.capture._deaths import RendererDeaths
from oven.capture._errors import BrowserGone, MemoryCeilingExceeded
from oven.capture._launch import ChromiumProcesses, find_processes, start_chromium
from oven.capture._pieces import PIECES_ROUTE, serve_piece
from oven.capture._settings import BrowserSettings
from oven.capture._slot import Slot
from oven.capture._targets import Targets
from oven.memory import RendererWatch, Verdict

log = logging.getLogger(__name__)

RequestFilter = Callable[[str], bool]
PARKED_VIEWPORT: ViewportSize = {"width": 640, "height": 360}


class BrowserState(enum.StrEnum):
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


class Browser:
    """Playwright + one Chromium (carrying the owner marker) + a bounded set of page slots."""

    def __init__(
        self,
        settings: BrowserSettings,
        marker: str,
        playwright: Playwright,
        browser: PWBrowser,
        request_filter: RequestFilter | None,
        watch: RendererWatch | None = None,
    ) -> None:
        self.settings = settings
        self.watch = watch
        self.marker = marker
        self.state = BrowserState.RUNNING
        self.needs_recycle = False
        self.recycle_reason: str | None = None
        self.jobs_done = 0
        self._closed_by_owner = False
        self._playwright = playwright
        self._browser = browser
        self._request_filter = request_filter
        self.procs = ChromiumProcesses(marker)
        self._cdp: CDPSession | None = None
        self._slots: list[Slot] = []
        self._idle: deque[Slot] = deque()
        self._target = settings.pages
        self._next_index = 0
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.deaths = RendererDeaths(watch)
        # New tabs are opened one at a time while a watch runs, so the renderers that appear
        # meanwhile are known to be the new tab's (see Slot._new_page).
        self.tab_lock = asyncio.Lock()
        browser.on("disconnected", lambda _: self._spawn(self._on_disconnected()))

    @classmethod
    async def launch(
        cls,
        settings: BrowserSettings,
        *,
        marker: str,
        request_filter: RequestFilter | None = None,
        watch: RendererWatch | None = None,
    ) -> Browser:
        """Start the driver and Chromium, find their pids, and prepare `settings.pages` slots.

        With a `watch`, Chromium's processes are handed to it (moved into the browser's cgroup
        when it has one) before any page opens, and renderer deaths are sorted with its help.
        """
        playwright, pw_browser = await start_chromium(settings, marker, watch)
        self = cls(settings, marker, playwright, pw_browser, request_filter, watch)
        try:
            await find_processes(self.procs, watch)
            self._cdp = await pw_browser.new_browser_cdp_session()
            # Chromium says how a target died only to a session with target discovery on, and
            # with discovery on, a renderer killed during Page.captureScreenshot took the whole
            # browser down in 4 of 4 tries here (1 of 4 without): renderer deaths are sorted by
            # the watch's record alone, and this listener only hears what Chromium volunteers.
            self._cdp.on("Target.targetCrashed", self.deaths.on_target_crashed)
            await self._grow(settings.pages)
        except BaseException:
            await self.close(timeout_s=settings.close_timeout_s)
            raise
        log.info("chromium started pid=%s own_process_group=%s slots=%d marker=%s",
                 self.browser_pid, self.procs.owns_group, settings.pages, marker)
        return self

    # --- facts --------------------------------------------------------------------------------

    @property
    def browser_pid(self) -> int | None:
        return self.procs.browser_pid

    @property
    def driver_pid(self) -> int | None:
        return self.procs.driver.pid if self.procs.driver is not None else None

    @property
    def profile_dir(self) -> Path | None:
        """The launch's throwaway profile, removed on stop."""
        return self.procs.profile_dir

    @property
    def slots(self) -> tuple[Slot, ...]:
        return tuple(self._slots)

    @property
    def size(self) -> int:
        """Wanted number of slots (live ones converge to it as busy slots are released)."""
        return self._target

    @property
    def is_connected(self) -> bool:
        return self.state is BrowserState.RUNNING and self._browser.is_connected()

    def pids(self) -> dict[str, list[int]]:
        """Pids by component: driver, browser, renderer, gpu, utility, other."""
        return _processes.process_tree(self.browser_pid, self.driver_pid)

    def mark_recycle(self, reason: str) -> None:
        """Ask the owner to replace this browser (it keeps serving until then)."""
        if not self.needs_recycle:
            log.warning("browser needs a recycle: %s", reason)
        self.needs_recycle = True
        self.recycle_reason = self.recycle_reason or reason

    async def health(self, timeout_s: float) -> bool:
        """Connected and answering a CDP `Browser.getVersion` within the timeout."""
        if not self.is_connected or self._cdp is None:
            return False
        try:
            async with asyncio.timeout(timeout_s):
                await self._cdp.send("Browser.getVersion")
        except Exception:
            return False
        return True

    def renderer_pids(self) -> set[int]:
        """This Chromium's live renderer pids (empty without a watch)."""
        if self.watch is None or self.browser_pid is None:
            return set()
        return self.watch.renderers_below(self.browser_pid)

    async def renderer_verdict(self, slot: Slot, *, at: float) -> Verdict:
        """Why `slot`'s renderer died: over its memory ceiling, or another crash."""
        return await self.deaths.verdict(slot.renderer_pids, self._renderers_besides(slot),
                                         slot.target_id, at=at)

    async def lost(self, slot: Slot, detail: str) -> BrowserGone | MemoryCeilingExceeded:
        """The error for a capture in `slot` whose browser went away under it."""
        others = [s.renderer_pids for s in self._slots if s is not slot]
        return await self.deaths.lost(set(slot.renderer_pids), others, detail,
                                      connected=self.is_connected)

    def lost_to_memory_kill(self, detail: str) -> BrowserGone:
        """BrowserGone, or BrowserLostToMemoryKill when this Chromium went down right after a
        renderer's memory death (see RendererDeaths.lost)."""
        return self.deaths.lost_to_memory_kill(detail, connected=self.is_connected)

    def _renderers_besides(self, slot: Slot) -> set[int]:
        return set().union(*(other.renderer_pids for other in self._slots if other is not slot))

    @property
    def targets(self) -> Targets:
        """Chromium's own list of what runs (see Targets)."""
        if self._cdp is None:
            raise BrowserGone("browser has no CDP session")
        return Targets(self._cdp)

    # --- contexts and slots -------------------------------------------------------------------

    async def new_context(self, density: float, *, proxy: str) -> BrowserContext:
        """A fresh context with oven's routes, its requests sent through `proxy` (its slot's
        egress proxy); service workers blocked (they outlive pages)."""
        context = await self._browser.new_context(
            viewport=PARKED_VIEWPORT, device_scale_factor=density, service_workers="block",
            proxy={"server": proxy},
        )
        if self._request_filter is not None:
            # Registered first: later routes win, so bundled pieces skip the filter.
            await context.route("**/*", self._filter_route)
        await context.route(PIECES_ROUTE, serve_piece)
        return context

    async def _filter_route(self, route: Route) -> None:
        assert self._request_filter is not None
        if self._request_filter(route.request.url):
            await route.fallback()
        else:
            await route.abort("blockedbyclient")

    @asynccontextmanager
    async def page_slot(self, *, timeout_s: float | None = None,
                        before_wipe: bool = False) -> AsyncIterator[Slot]:
        """Hold a page slot for one job; waits (bounded) while all slots are busy.

        On exit the slot is wiped (bounded by reset_timeout_s), and only then offered to the next
        job: after a job that finished, its tab is reset; after one that raised or was
        cancelled, its page and context are closed (a timeout really stops the piece) and a
        fresh context is prepared in the background. This returns once the wipe is done, or at
        once after a job that finished if `before_wipe` (the BrowserPool's jobs go on to their
        encode while the next job, claimed meanwhile, waits for the wiped slot).
        """
        wait_s = self.settings.acquire_timeout_s if timeout_s is None else timeout_s
        async with asyncio.timeout(wait_s):
            slot = await self._acquire()
        closed = asyncio.Event()
        finished = False
        try:
            yield slot
            finished = True
        finally:
            # Counted here, not in the release task: the caller checks needs_recycle at once.
            self.jobs_done += 1
            slot.jobs += 1
            if self.jobs_done >= self.settings.restart_after:
                self.mark_recycle(f"served {self.jobs_done} jobs (restart_after)")
            self._spawn(self._release(slot, closed, finished))
            if not (finished and before_wipe):
                # Shielded: a second cancellation must not abandon the release half-way.
                await asyncio.shield(closed.wait())

    async def _acquire(self) -> Slot:
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._idle) or not self.is_connected)
            if not self.is_connected:
                raise BrowserGone(f"browser is {self.state.value}, not connected")
            return self._idle.popleft()

    async def _release(self, slot: Slot, closed: asyncio.Event, finished: bool) -> None:
        try:
            wipe = slot.reset if finished else slot.discard
            ok = await wipe(timeout_s=self.settings.reset_timeout_s)
        finally:
            closed.set()
        if not ok:
            self.mark_recycle(f"resetting slot {slot.index} hung")
            await self._retire(slot)
            return
        if len(self._slots) > self._target or not self.is_connected:
            await self._retire(slot)
            return
        try:
            await slot.prepare(slot.density)
        except Exception as exc:
            if self.is_connected:
                self.mark_recycle(f"preparing slot {slot.index} failed: {exc}")
            await self._retire(slot)
            return
        async with self._changed:
            # Re-checked after the await: resize() may have shrunk the pool meanwhile.
            keep = len(self._slots) <= self._target and self.is_connected
            if keep:
                self._idle.append(slot)
                self._changed.notify_all()
        if not keep:
            await slot.discard(timeout_s=self.settings.close_timeout_s)
            await self._retire(slot)

    async def _retire(self, slot: Slot) -> None:
        async with self._changed:
            if slot in self._slots:
                self._slots.remove(slot)
            if slot in self._idle:
                self._idle.remove(slot)
            self._changed.notify_all()
        await slot.close_egress()

    async def _grow(self, n: int) -> None:
        new = [Slot(self, self._next_index + i) for i in range(n)]
        self._next_index += n
        try:
            await asyncio.gather(*(s.prepare(1.0) for s in new))
        except BaseException:
            for slot in new:
                await slot.close_egress()
            raise
        async with self._changed:
            self._slots.extend(new)
            self._idle.extend(new)
            self._changed.notify_all()

    async def resize(self, n: int, *, timeout_s: float = 30.0) -> None:
        """Change the number of slots live; shrinking waits (bounded) for busy slots to finish."""
        if not 1 <= n <= 16:
            raise ValueError(f"pages must be 1..16, not {n}")
        self._target = n
        if len(self._slots) < n:
            await self._grow(n - len(self._slots))
            return
        async with asyncio.timeout(timeout_s):
            while len(self._slots) > self._target:
                async with self._changed:
                    # Busy slots retire themselves on release (see _release); idle ones go now.
                    await self._changed.wait_for(
                        lambda: bool(self._idle) or len(self._slots) <= self._target
                    )
                    surplus = self._idle.pop() if len(self._slots) > self._target else None
                    if surplus is not None:
                        self._slots.remove(surplus)
                if surplus is not None:
                    await surplus.discard(timeout_s=self.settings.close_timeout_s)
                    await surplus.close_egress()

    # --- stopping -----------------------------------------------------------------------------

    @property
    def is_closed_by_owner(self) -> bool:
        """Closed or killed on purpose (close/kill), not lost to a crash of Chromium."""
        return self._closed_by_owner

    async def _on_disconnected(self) -> None:
        if self.state is BrowserState.RUNNING:
            self.mark_recycle("chromium disconnected")
        async with self._changed:
            self._changed.notify_all()  # waiters in _acquire raise BrowserGone

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        # Held so the task is not garbage-collected mid-flight; close() cancels leftovers.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, timeout_s: float) -> None:
        """Close gracefully within timeout_s, then SIGKILL whatever of Chromium is left."""
        if self.state is BrowserState.CLOSED:
            return
        if self.state is BrowserState.RUNNING and self._browser.is_connected():
            self._closed_by_owner = True
        self.state = BrowserState.CLOSING
        async with self._changed:
            self._changed.notify_all()
        tree = self.procs.snapshot()
        if self.watch is not None and self.browser_pid is not None:
            self.watch.forget(self.browser_pid)
        try:
            async with asyncio.timeout(timeout_s):
                await self._browser.close()
        except Exception as exc:
            log.warning("graceful chromium close failed (%s); killing its process group", exc)
        self.procs.kill(tree)
        for task in list(self._tasks):
            task.cancel()
        for slot in self._slots:
            await slot.close_egress()
        try:
            async with asyncio.timeout(timeout_s):
                await self._playwright.stop()
        except Exception as exc:
            log.warning("stopping the playwright driver failed (%s); killing it", exc)
        self.procs.kill_driver()
        tree += self.procs.group()
        left = await asyncio.to_thread(_processes.wait_gone, tree, timeout_s=timeout_s)
        self.state = BrowserState.CLOSED
        left_pids = sorted({p.pid for p in left} | set(self.leftover_pids()))
        if left_pids:
            log.error("chromium processes survived SIGKILL: %s", left_pids)
        else:
            # Playwright removes it on a graceful close only; after a kill it is still there.
            await asyncio.to_thread(_processes.remove_profile, self.profile_dir)
        log.info("chromium stopped marker=%s", self.marker)

    def kill(self) -> None:
        """Hard stop from any thread: SIGKILL Chromium's process group and the driver.

        Does not touch the event loop, so it works when the loop running the browser is hung.
        """
        self.state = BrowserState.CLOSING
        self.procs.kill_all(self.profile_dir, timeout_s=self.settings.close_timeout_s)

    def leftover_pids(self) -> list[int]:
        """Live processes still in Chromium's process group or carrying this marker."""
        return self.procs.leftover_pids()
