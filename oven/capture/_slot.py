"""A page slot: one warm browser context, and a fresh tab in it for every job."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from ada_url import URL
from playwright.async_api import BrowserContext, CDPSession, Page, Route
from playwright.async_api import Error as PlaywrightError

from oven.capture._egress import EgressProxy
from oven.capture._errors import BrowserGone
from oven.capture._guard import RequestGuard

if TYPE_CHECKING:
    from oven.capture._browser import Browser

log = logging.getLogger(__name__)


class Slot:
    """A page slot: a browser context and one tab kept warm, parked on about:blank.

    Measured on Chromium 156 (Chromium CPU per job of a small piece): a new context 0.52 s, a
    new tab in a live context 0.37 s (each tab gets a renderer process of its own), the same
    tab navigated again 0.14 s. So the tab lives on between jobs and `reset` wipes what a job
    leaves: it leaves the piece for about:blank, clears every visited origin's storage
    (local, session, IndexedDB, cache storage, service workers), the context's cookies and
    permissions, and removes per-job init scripts. Each job still gets a new document, so no
    JS state survives; only the tab's history length does. A job with another density gets a
    new context (density is a context option).
    """

    def __init__(self, browser: Browser, index: int) -> None:
        self.browser = browser
        self.index = index
        self.density = 1.0
        self.jobs = 0
        self._context: BrowserContext | None = None
        self._page: Page | None = None
        self._cdp: CDPSession | None = None
        self._context_id: str | None = None  # the CDP browserContextId of the tab's context
        self._origins: set[str] = set()
        self.init_scripts: list[str] = []  # Page.addScriptToEvaluateOnNewDocument ids of a job
        self.tab_jobs = 0  # jobs served by the current tab
        self.guard: RequestGuard | None = None  # the running raw-URL job's request guard
        self._hooked = False  # the context's page hook (see _new_page)
        self._guard_tasks: set[asyncio.Task[None]] = set()
        self.renderer_pids: set[int] = set()  # the tab's renderers, when a watch could tell
        self.target_id: str | None = None  # the tab's CDP target (crash reports name it)
        self.crashed = False  # the tab's renderer died: nothing of it can be reset
        self._emulated: set[str] = set()  # per-job emulation overrides to take back
        self.egress: EgressProxy | None = None  # the context's proxy (see EgressProxy)
        # What the egress proxy checks requests against: the last job's guard, kept past its
        # wipe until the next job starts (a worker of the job's document can still send a
        # request a few ms after Chromium stopped listing it).
        self.egress_guard: RequestGuard | None = None

    @property
    def page(self) -> Page:
        if self._page is None:
            raise BrowserGone(f"slot {self.index} has no page")
        return self._page

    @property
    def cdp(self) -> CDPSession:
        """A CDP session on the page (Network enabled, blocked URLs applied)."""
        if self._cdp is None:
            raise BrowserGone(f"slot {self.index} has no CDP session")
        return self._cdp

    @property
    def ready(self) -> bool:
        return self._page is not None and not self._page.is_closed()

    async def prepare(self, density: float) -> None:
        """Make sure a fresh tab in a context with this device scale factor is parked here.

        Only a change of density costs a context creation; the next job reuses the context.
        """
        if self._page is not None and self.density == density and not self._page.is_closed():
            return
        if self._context is None or self.density != density:
            await self.discard(timeout_s=self.browser.settings.close_timeout_s)
            # One egress proxy per context: a closed context's last requests (its renderer
            # can outlive it by a few ms) find its proxy gone.
            await self.close_egress()
            egress = EgressProxy(lambda: self.egress_guard,
                                 upstream=self.browser.settings.upstream_proxy)
            await egress.start()
            self.egress = egress
            self._context = await self.browser.new_context(density, proxy=egress.server)
            self.density = density
        await self._new_page()

    async def _new_page(self) -> None:
        assert self._context is not None
        if not self._hooked:
            self._context.on("page", self._on_extra_page)
            self._hooked = True
        watched = self.browser.watch is not None
        async with self.browser.tab_lock if watched else _NO_LOCK:
            before = await asyncio.to_thread(self.browser.renderer_pids) if watched else set()
            self._page = await self._context.new_page()
            after = await asyncio.to_thread(self.browser.renderer_pids) if watched else set()
        self.renderer_pids, self.crashed = after - before, False
        self._page.on("framenavigated", self._remember_origin)
        self._page.on("crash", self._on_crash)
        self._cdp = await self._context.new_cdp_session(self._page)
        info = await self._cdp.send("Target.getTargetInfo")
        self.target_id = info["targetInfo"]["targetId"]
        self._context_id = info["targetInfo"].get("browserContextId")
        patterns = self.browser.settings.blocked_url_patterns
        # Page: init scripts added on this session (the virtual clock) apply only once it is
        # enabled here; DOMStorage: Slot.reset clears the tab's sessionStorage through it.
        await self._cdp.send("Page.enable")
        await self._cdp.send("DOMStorage.enable")
        if patterns:
            # Blocking inside Chromium costs nothing per request; a route would pause every
            # request for a round trip through the driver. The newer `urlPatterns` parameter
            # is accepted by Chromium 156 but does not block; `urls` (globs) does.
            await self._cdp.send("Network.enable")
            await self._cdp.send("Network.setBlockedURLs", {"urls": patterns})

    async def add_init_script(self, source: str) -> None:
        """Run `source` in every document of this job before the page's own scripts.

        Through CDP, not page.add_init_script: the tab serves later jobs too, so the script
        must be removable (reset removes it)."""
        added = await self.cdp.send("Page.addScriptToEvaluateOnNewDocument", {"source": source})
        self.init_scripts.append(added["identifier"])

    async def emulate_background_transparent(self) -> None:
        """No default white behind the page: what the page leaves unpainted stays transparent."""
        self._emulated.add("transparent")
        await self.cdp.send("Emulation.setDefaultBackgroundColorOverride",
                            {"color": {"r": 0, "g": 0, "b": 0, "a": 0}})

    async def emulate_media(self, *, color_scheme: str | None, reduced_motion: bool) -> None:
        """prefers-color-scheme and prefers-reduced-motion for this job (through Playwright,
        whose own session emulates media too: a second session's override could lose)."""
        self._emulated.add("media")
        await self.page.emulate_media(
            color_scheme=color_scheme,  # type: ignore[arg-type]
            reduced_motion="reduce" if reduced_motion else None)

    async def _take_back_emulation(self, page: Page, cdp: CDPSession) -> None:
        emulated, self._emulated = self._emulated, set()
        if "transparent" in emulated:
            await cdp.send("Emulation.setDefaultBackgroundColorOverride", {})
        if "media" in emulated:
            # A context's defaults (Playwright creates contexts with these).
            await page.emulate_media(color_scheme="light", reduced_motion="no-preference")

    def start_job(self, guard: RequestGuard | None) -> None:
        """A job begins in this slot: its requests leave under `guard` (None: unchecked)."""
        self.egress_guard = guard

    async def guard_requests(self, guard: RequestGuard) -> None:
        """Check every request of the job about to run against `guard` until `reset`.

        Only raw-URL jobs pay for this: each hook pauses every request for a round trip
        through Python (the first lookup of a host costs a DNS query, later ones are cached).
        The route is the context's, not the tab's: Playwright holds a popup or a worker before
        its first request until the context's routes apply to it (measured: a tab route misses
        popups, and a popup's requests would otherwise go out unchecked).
        """
        cdp = self.cdp
        if self._context is None:
            raise BrowserGone(f"slot {self.index} has no context")
        self.guard = guard
        cdp.on("Fetch.requestPaused", self._on_paused)
        await cdp.send("Fetch.enable",
                       {"patterns": [{"urlPattern": "*", "requestStage": "Request"}]})
        await self._context.route("**/*", self._guard_route)

    async def _unguard(self, cdp: CDPSession) -> None:
        if self.guard is None:
            return
        self.guard = None
        cdp.remove_listener("Fetch.requestPaused", self._on_paused)
        await cdp.send("Fetch.disable")
        if self._context is not None:
            await self._context.unroute("**/*", self._guard_route)

    def _on_extra_page(self, page: Page) -> None:
        # A capture never needs a second tab. While a guard is set, a popup is closed at once
        # (its requests are refused meanwhile, see _guard_route); otherwise at the job's end.
        if self.guard is None or page is self._page:
            return
        task = asyncio.get_running_loop().create_task(self._close_quietly(page))
        self._guard_tasks.add(task)
        task.add_done_callback(self._guard_tasks.discard)

    @staticmethod
    async def _close_quietly(page: Page) -> None:
        try:
            await page.close()
        except PlaywrightError as exc:  # already closed, or the context went away
            log.debug("closing an extra page failed: %s", exc)

    def _on_paused(self, event: dict[str, Any]) -> None:
        # CDP events arrive as plain callbacks; the verdict may need a DNS lookup.
        task = asyncio.get_running_loop().create_task(self._answer_paused(event))
        self._guard_tasks.add(task)  # held so it is not garbage-collected mid-flight
        task.add_done_callback(self._guard_tasks.discard)

    async def _answer_paused(self, event: dict[str, Any]) -> None:
        cdp, guard = self._cdp, self.guard
        if cdp is None:
            return
        request_id, url = event["requestId"], event["request"]["url"]
        reason = await guard.verdict(url) if guard is not None else None
        try:
            if reason is None:
                await cdp.send("Fetch.continueRequest", {"requestId": request_id})
            else:
                assert guard is not None
                guard.record(url, reason)
                await cdp.send("Fetch.failRequest",
                               {"requestId": request_id, "errorReason": "BlockedByClient"})
        except PlaywrightError as exc:  # the request or the tab went away meanwhile
            log.debug("answering a paused request failed: %s", exc)

    async def _guard_route(self, route: Route) -> None:
        guard, url = self.guard, route.request.url
        reason = None
        if guard is not None:
            reason = "popup" if self._from_extra_page(route) else await guard.verdict(url)
        if reason is None:
            await route.fallback()  # on to the context's routes (bundled pieces, blocked hosts)
            return
        assert guard is not None
        guard.record(url, reason)
        await route.abort("blockedbyclient")

    def _from_extra_page(self, route: Route) -> bool:
        """A request of another tab than the job's: a popup. Its navigation's redirect hops
        would pass unchecked (routes never see them), so all of its requests are refused."""
        request = route.request
        try:
            page = request.frame.page
        except PlaywrightError:
            # Measured: a popup's first navigation has no frame yet (the job's own tab and its
            # iframes always have one); a service worker's requests have none either.
            return request.is_navigation_request()
        return page is not self._page

    def _on_crash(self, page: Page) -> None:
        if page is self._page:
            self.crashed = True

    def _remember_origin(self, frame: Any) -> None:
        origin = _origin(frame.url)
        if origin is not None:
            self._origins.add(origin)

    async def _forget_permission_answers(self, cdp: CDPSession, origins: set[str]) -> None:
        """Put every permission a page may have asked for back to `prompt` for the origins the
        job visited. A page that asks is refused in headless Chromium, and that refusal stays
        with the context: clear_permissions (Browser.resetPermissions) does not undo it, so the
        next client's page on the origin would find it denied (and one page could signal to
        the next through it)."""
        # Sent all at once: they are independent, and one after another they were 18 round
        # trips through the driver on the way to the next job (~25 ms).
        answers = await asyncio.gather(*(
            cdp.send("Browser.setPermission", {
                "permission": {"name": name}, "setting": "prompt", "origin": origin,
                "browserContextId": self._context_id})
            for origin in origins for name in _PERMISSIONS), return_exceptions=True)
        for answer in answers:
            # A name this Chromium does not know, or cannot set per origin, is refused.
            if isinstance(answer, BaseException) and not isinstance(answer, PlaywrightError):
                raise answer

    async def reset(self, *, timeout_s: float) -> bool:
        """Wipe what the job left in the tab and its context; the tab stays for the next job.

        False when it hung past the timeout (the owner then retires the slot and recycles).
        """
        page, cdp = self._page, self._cdp
        origins, self._origins = self._origins, set()
        scripts, self.init_scripts = self.init_scripts, []
        if (self._context is None or page is None or cdp is None or page.is_closed()
                or self.crashed):
            # A crashed tab answers nothing: wiping it would only wait for the timeout.
            return await self.discard(timeout_s=timeout_s)
        try:
            async with asyncio.timeout(timeout_s):
                # The guard stays until nothing of the job runs any more: scripts stopped, the
                # tab on about:blank, and every other target of the context gone.
                for identifier in scripts:
                    await cdp.send("Page.removeScriptToEvaluateOnNewDocument",
                                   {"identifier": identifier})
                # No script may run while we wipe: unload handlers and timers could write
                # storage again after it is cleared.
                await cdp.send("Emulation.setScriptExecutionDisabled", {"value": True})
                # sessionStorage belongs to the tab and can only be cleared through a live
                # frame of its origin, so before leaving the piece.
                for origin in {_origin(f.url) for f in page.frames} - {None}:
                    await cdp.send("DOMStorage.clear", {"storageId": {
                        "securityOrigin": origin, "isLocalStorage": False}})
                await page.goto("about:blank")
                # What the piece's document left is garbage now, but pixel buffers (a piece's
                # own getImageData, or canvas frames' where VideoFrame cannot read the canvas:
                # ~0.9 MB a 640x360 frame) live in Blink's heap, which only a full collection
                # frees, and V8 waits for ~64 MB of them to start one: a renderer that served
                # such jobs held 59-78 MB private at the peak of bench/side_by_side.py, ~10 MB
                # once collected here. ~10 ms of the renderer's CPU, off the finished job's
                # path.
                await cdp.send("HeapProfiler.collectGarbage")
                await cdp.send("Emulation.setScriptExecutionDisabled", {"value": False})
                await self._take_back_emulation(page, cdp)
                # The guard stays until every other target of the context is gone.
                if self._context_id is None:
                    raise BrowserGone(f"slot {self.index}: its context has no CDP id")
                await self.browser.targets.leave_only(self._context_id, self.target_id)
                await self._unguard(cdp)
                for origin in origins:
                    await cdp.send("Storage.clearDataForOrigin",
                                   {"origin": origin, "storageTypes": "all"})
                await self._context.clear_cookies()
                await self._context.clear_permissions()
                await self._forget_permission_answers(cdp, origins)
                self.tab_jobs += 1
                if self.tab_jobs >= self.browser.settings.jobs_per_tab:
                    # Renew the tab: its renderer grows a little with every job it serves.
                    self._page, self._cdp, self.tab_jobs = None, None, 0
                    await page.close()
        except TimeoutError:
            return False
        except Exception as exc:
            # A crashed tab or a closing browser: start the next job from a new context.
            log.debug("reset of slot %d failed (%s); replacing its context", self.index, exc)
            return await self.discard(timeout_s=timeout_s)
        return True

    async def close_egress(self) -> None:
        """Stop the slot's egress proxy (its context is closed, or its browser gone)."""
        egress, self.egress = self.egress, None
        if egress is not None:
            await egress.close()

    async def discard(self, *, timeout_s: float) -> bool:
        """Close the slot's context; False when closing hung past the timeout.

        Closing detaches the DevTools sessions that hold the context's requests paused, and
        Chromium lets those go unchecked; its renderer can send more for a few ms after. The
        context's egress proxy refuses them under the job's guard, and closes with it (see
        EgressProxy; measured before it: a worker of a raw-URL job that failed reached a
        private address in ~1 of 10 such jobs).
        """
        context, self._context, self._page, self._cdp = self._context, None, None, None
        self._hooked = False
        self.renderer_pids, self.target_id, self.crashed = set(), None, False
        self._origins, self.init_scripts, self.tab_jobs = set(), [], 0
        self._emulated = set()
        if context is None:
            self.guard = None
            return True
        try:
            # Bounded: a wedged renderer can keep close() pending forever.
            async with asyncio.timeout(timeout_s):
                await context.close()
        except TimeoutError:
            return False  # the guard stays: the owner retires the slot and recycles
        except Exception as exc:  # closing a context of a dead browser is already done
            log.debug("context close of slot %d failed: %s", self.index, exc)
        self.guard, self._context_id = None, None
        await self.close_egress()
        return True


_NO_LOCK = contextlib.nullcontext()


def _origin(url: str) -> str | None:
    try:
        parsed = URL(url)
    except ValueError:
        return None
    return str(parsed.origin) if parsed.protocol in ("http:", "https:") else None

# The permissions a page can ask for (CDP PermissionDescriptor names); the wipe sets each back
# to `prompt` for the origins a job visited.
_PERMISSIONS = ("geolocation", "midi", "notifications", "push", "camera", "microphone",
                "clipboard-read", "clipboard-write", "persistent-storage", "background-sync",
                "screen-wake-lock", "idle-detection", "storage-access", "local-fonts",
                "window-management", "accelerometer", "gyroscope", "magnetometer")
