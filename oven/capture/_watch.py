"""What a page does wrong during a job: uncaught errors, scripts that failed to load, a crash."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Request, Response

if TYPE_CHECKING:
    from oven.capture._browser import Slot

# A result carries at most this many page errors, each cut to MAX_ERROR_CHARS: a page that
# throws every frame must not turn a job record into megabytes.
MAX_ERRORS = 20
MAX_ERROR_CHARS = 300
_SCRIPT_TYPES = ("script", "stylesheet")
_GONE_HINTS = ("crashed", "Target closed", "has been closed", "Browser closed", "Session closed",
               "Connection closed", "disconnected")


class PageWatch:
    """Collects uncaught page errors, failed script and style loads, and crash notices."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []  # uncaught exceptions: they fail a contract page at once
        self.failed_loads: list[str] = []
        self.dropped = 0
        self.crashed = False
        self.crashed_at = 0.0  # time.monotonic() of the crash event
        self.event = asyncio.Event()
        page.on("pageerror", self._on_error)
        page.on("crash", self._on_crash)
        page.on("requestfailed", self._on_request_failed)
        page.on("response", self._on_response)

    def _keep(self, into: list[str], text: str) -> bool:
        if len(self.errors) + len(self.failed_loads) >= MAX_ERRORS:
            self.dropped += 1
            return False
        into.append(text[:MAX_ERROR_CHARS])
        return True

    def _on_error(self, error: PlaywrightError) -> None:
        message = (error.message or error.name or "unknown error").splitlines()[0]
        if not self.errors:
            self.errors.append(message[:MAX_ERROR_CHARS])  # the first always counts
        elif not self._keep(self.errors, message):
            return
        self.event.set()

    def _on_request_failed(self, request: Request) -> None:
        if request.resource_type in _SCRIPT_TYPES:
            self._keep(self.failed_loads, f"{request.resource_type} failed to load "
                       f"({request.failure or 'failed'}): {request.url}")

    def _on_response(self, response: Response) -> None:
        request = response.request
        if response.status >= 400 and request.resource_type in _SCRIPT_TYPES:
            self._keep(self.failed_loads, f"{request.resource_type} failed to load "
                       f"({response.status}): {request.url}")

    def _on_crash(self, _: Page) -> None:
        self.crashed = True
        self.crashed_at = time.monotonic()
        self.event.set()

    def page_errors(self) -> list[str]:
        """Everything the page did wrong, errors first, bounded."""
        out = [*self.errors, *self.failed_loads]
        if self.dropped:
            out.append(f"... and {self.dropped} more")
        return out

    def detach(self) -> None:
        self.page.remove_listener("pageerror", self._on_error)
        self.page.remove_listener("crash", self._on_crash)
        self.page.remove_listener("requestfailed", self._on_request_failed)
        self.page.remove_listener("response", self._on_response)


def is_gone(slot: Slot, watch: PageWatch | None, exc: BaseException) -> bool:
    """Whether a failed page call failed because the page, its renderer or Chromium went."""
    if (watch is not None and watch.crashed) or not slot.browser.is_connected:
        return True
    if not slot.ready:
        return True
    text = str(exc)
    return any(hint in text for hint in _GONE_HINTS)


def first_line(exc: PlaywrightError) -> str:
    """The first line of a Playwright error: what went wrong. The rest is its "Browser logs" or
    "Call log" (Chromium's command line and stderr), kilobytes that are no client's business."""
    return exc.message.splitlines()[0] if exc.message else repr(exc)
