"""Why a page's renderer, or its whole Chromium, died under a capture.

Two witnesses: the RendererWatch's record of renderer deaths (by pid and time, with the memory
ceiling it enforces) and Chromium's own `Target.targetCrashed` reports, heard on the browser's
CDP session. A renderer killed over its ceiling fails its job with MemoryCeilingExceeded (the
piece's fault); a Chromium that falls right after such a kill costs the other pages nothing
(BrowserLostToMemoryKill, retried without an attempt counted); anything else is BrowserGone.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from oven.capture._errors import BrowserGone, BrowserLostToMemoryKill, MemoryCeilingExceeded
from oven.memory import RendererWatch, Verdict, classify_renderer_death, memory_message

# Chromium's fall after a renderer's memory death: measured at ~1 s; this leaves room for load.
MEMORY_KILL_WINDOW_S = 5.0


class RendererDeaths:
    def __init__(self, watch: RendererWatch | None) -> None:
        self.watch = watch
        # Chromium's word on each crashed target: (termination status, code), by target id.
        self._crashes: dict[str, tuple[str, int | None]] = {}

    def on_target_crashed(self, event: dict[str, Any]) -> None:
        self._crashes[event.get("targetId", "")] = (str(event.get("status", "")),
                                                    event.get("errorCode"))

    async def verdict(self, own: set[int], others: set[int], target_id: str | None, *,
                      at: float) -> Verdict:
        """Why the renderer with pids `own` (or, unknown, one no other slot holds) died.

        Waits (bounded) for the watch's record of the renderer, matched by pid when its pids
        are known, else by time among renderers of no other slot.
        """
        death = None
        if self.watch is not None:
            death = await self.watch.death_of(own, others, at=at, timeout_s=1.0)
        status = self._crashes.pop(target_id or "", None)
        ceiling = self.watch.plan.page_ceiling if self.watch is not None else None
        return classify_renderer_death(
            death=death, crash_status=status[0] if status else None,
            crash_code=status[1] if status else None, ceiling=ceiling)

    async def lost(self, own: set[int], others: Iterable[set[int]], detail: str, *,
                   connected: bool) -> BrowserGone | MemoryCeilingExceeded:
        """The error for a capture whose browser went away under it (its renderers `own`).

        Chromium 156 can segfault (its browser process, not a renderer) in the second after a
        renderer is killed over its ceiling while Page.captureScreenshot is in flight. Then the
        page that was killed gets its memory error, and every other page's job is innocent
        (BrowserLostToMemoryKill: retried without an attempt counted).
        """
        if self.watch is None or connected:
            return BrowserGone(detail)
        if own:
            # Exact pids only: with the browser gone every renderer died, and a time match
            # could hand another page's memory death to this one.
            death = await self.watch.death_of(set(own), set().union(*others), at=-1e9,
                                              timeout_s=0.5)
            if death is not None and death.over_ceiling:
                return MemoryCeilingExceeded(memory_message(death.ceiling))
        return self.lost_to_memory_kill(detail, connected=connected)

    def lost_to_memory_kill(self, detail: str, *, connected: bool) -> BrowserGone:
        """BrowserGone, or BrowserLostToMemoryKill when Chromium went down within
        MEMORY_KILL_WINDOW_S of a renderer's memory death (see `lost`)."""
        if self.watch is None or connected:
            return BrowserGone(detail)
        death = self.watch.memory_death_since(time.monotonic() - MEMORY_KILL_WINDOW_S)
        if death is None:
            return BrowserGone(detail)
        return BrowserLostToMemoryKill(
            f"{detail} (chromium went down right after renderer {death.pid} was killed over "
            f"its memory ceiling: {death.how})")
