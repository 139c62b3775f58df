"""A page slot: one warm browser context + page, fresh for every job."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from playwright.async_api import BrowserContext, CDPSession, Page

from oven.capture._errors import BrowserGone

if TYPE_CHECKING:
    from oven.capture._browser import Browser

log = logging.getLogger(__name__)


class Slot:
    """A page slot: a fresh browser context with one page parked on about:blank.

    A slot serves one job; then its context is closed and a new one prepared, so cookies and
    storage never leak from one piece to the next.
    """

    def __init__(self, browser: Browser, index: int) -> None:
        self.browser = browser
        self.index = index
        self.density = 1.0
        self.jobs = 0
        self._context: BrowserContext | None = None
        self._page: Page | None = None
        self._cdp: CDPSession | None = None

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
        """Make sure a fresh context with this device scale factor is parked in the slot.

        Density is a context option, so a job asking for another density than the parked
        context pays one context creation (~130 ms measured); the next context is prepared with
        the density last used, so runs of same-density jobs pay nothing.
        """
        if self._page is not None and self.density == density and not self._page.is_closed():
            return
        await self.discard(timeout_s=self.browser.settings.close_timeout_s)
        self._context = await self.browser.new_context(density)
        self.density = density
        self._page = await self._context.new_page()
        self._cdp = await self._context.new_cdp_session(self._page)
        patterns = self.browser.settings.blocked_url_patterns
        if patterns:
            # Blocking inside Chromium costs nothing per request; a route would pause every
            # request for a round trip through the driver. The newer `urlPatterns` parameter
            # is accepted by Chromium 156 but does not block; `urls` (globs) does.
            await self._cdp.send("Network.enable")
            await self._cdp.send("Network.setBlockedURLs", {"urls": patterns})

    async def discard(self, *, timeout_s: float) -> bool:
        """Close the slot's context; False when closing hung past the timeout."""
        context, self._context, self._page, self._cdp = self._context, None, None, None
        if context is None:
            return True
        try:
            # Bounded: a wedged renderer can keep close() pending forever.
            await asyncio.wait_for(context.close(), timeout_s)
        except TimeoutError:
            return False
        except Exception as exc:  # closing a context of a dead browser is already done
            log.debug("context close of slot %d failed: %s", self.index, exc)
        return True
