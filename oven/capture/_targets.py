"""Chromium's own list of what it runs (pages, frames, workers), through the browser-wide CDP
session: what a job may have left running, whatever Playwright has or has not reported."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from playwright.async_api import CDPSession
from playwright.async_api import Error as PlaywrightError

log = logging.getLogger(__name__)


class Targets:
    def __init__(self, cdp: CDPSession) -> None:
        self._cdp = cdp

    async def list(self) -> list[dict[str, Any]]:
        """Every target, as CDP `Target.getTargets` lists them (type, url, browserContextId)."""
        answer = await self._cdp.send("Target.getTargets")
        return list(answer["targetInfos"])

    async def close(self, target_id: str) -> None:
        """Close one target (a page) by its CDP id; one already gone is no error."""
        try:
            await self._cdp.send("Target.closeTarget", {"targetId": target_id})
        except PlaywrightError as exc:
            log.debug("closing target %s failed: %s", target_id, exc)

    async def leave_only(self, context_id: str, tab: str | None) -> None:
        """Close every page of the context `context_id` but `tab` (None: every page), and
        return once no page, frame or worker of it is left but the tab.

        A popup opened while a tab is wiped (by another popup, or reported late) is not among
        the pages Playwright has reported (seen beside a CPU hog: a target=_blank popup
        outlived its job; a chain of popups, each opening the next, outlived it for good).
        Workers end with their documents. Unbounded: the caller's timeout bounds it.
        """
        while True:
            left = [t for t in await self.list()
                    if t.get("browserContextId") == context_id and t["targetId"] != tab
                    and runs_content(t["type"])]
            if not left:
                return
            await asyncio.gather(*(self.close(t["targetId"])
                                   for t in left if t["type"] == "page"))
            await asyncio.sleep(0.02)  # Chromium has no event for "all of a context's targets gone"


def runs_content(target_type: str) -> bool:
    """A target that runs a job's content: a page, a frame, a worker or a worklet (Chromium's
    own `browser_ui` targets, e.g. the omnibox popup, are listed under every context)."""
    return (target_type in ("page", "iframe", "worker", "shared_worker", "service_worker")
            or target_type.endswith("worklet"))
