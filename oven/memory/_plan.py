"""The budget, the browser's share of it, each page's ceiling, and pages = "auto"."""

from __future__ import annotations

import logging

from ._ceilings import BrowserCgroup, CeilingPlan, CeilingUnavailable, Mechanism
from ._cgroup import CgroupMemory, CgroupReader, resolve_budget
from ._settings import MemorySettings

log = logging.getLogger(__name__)

MiB = 1024 * 1024
# Measured here (Chromium 156, charged to the browser's cgroup): the main process, zygotes, GPU
# and utility processes with no page open hold ~60-110 MB; this leaves room for WebGL contexts
# in the GPU process, which no renderer cgroup sees.
BROWSER_BASE = 160 * MiB
MAX_AUTO_CEILING = 2048 * MiB
MIN_CEILING = 64 * MiB
MAX_PAGES = 16


def memory_budget(settings: MemorySettings, cgroup: CgroupMemory | None) -> tuple[int, str]:
    """The budget (bytes) and where it came from; a cgroup limit keeps the reserve back."""
    return resolve_budget(
        settings.budget_bytes, settings.mem_total_share, cgroup,
        reserve=lambda limit: max(settings.reserve_min_bytes, int(limit * settings.reserve_share)))


def browser_limit(settings: MemorySettings, budget: int) -> int:
    """What Chromium's cgroup may hold: the budget less what oven, the driver and ffmpeg need."""
    return max(budget - settings.oven_reserve_bytes, budget // 2)


def auto_pages(settings: MemorySettings, budget: int) -> int:
    """`browser.pages = "auto"`: as many pages as the browser's share holds at their cost."""
    room = browser_limit(settings, budget) - BROWSER_BASE
    return max(1, min(MAX_PAGES, room // settings.page_cost_bytes))


def page_ceiling(settings: MemorySettings, budget: int, pages: int) -> int:
    """The most one page may hold: set, or the browser's share split between its pages."""
    if settings.page_ceiling_bytes is not None:
        return settings.page_ceiling_bytes
    room = browser_limit(settings, budget) - BROWSER_BASE
    return max(MIN_CEILING, min(MAX_AUTO_CEILING, room // max(1, pages)))


def plan_ceilings(
    settings: MemorySettings, *, budget: int, pages: int, reader: CgroupReader | None,
    owner_pid: int | None = None,
) -> tuple[CeilingPlan, BrowserCgroup | None]:
    """Decide how pages are held to their ceiling here, making the cgroups when that is how."""
    ceiling = page_ceiling(settings, budget, pages)
    limit = browser_limit(settings, budget)
    if settings.ceiling == "off":
        return CeilingPlan("off", "memory.ceiling = \"off\"", ceiling, None), None
    if settings.ceiling == "poll":
        return CeilingPlan("poll", "memory.ceiling = \"poll\"", ceiling, None), None
    try:
        cgroup = BrowserCgroup.create(reader, limit=limit, ceiling=ceiling, owner_pid=owner_pid)
    except CeilingUnavailable as exc:
        if settings.ceiling == "cgroup":
            log.warning("memory.ceiling = \"cgroup\" but %s; polling renderers instead", exc)
        reason = f"no cgroup could be made ({exc}): renderers polled"
        return CeilingPlan("poll", reason, ceiling, None), None
    assert reader is not None
    mechanism: Mechanism = "cgroup-v2" if reader.version == "v2" else "cgroup-v1"
    reason = (f"a cgroup per renderer (limit {ceiling >> 20} MB) below one for the browser "
              f"(limit {limit >> 20} MB) below oven's own {reader.directory}")
    return CeilingPlan(mechanism, reason, ceiling, limit), cgroup


def pages_for(settings: MemorySettings) -> tuple[int, str]:
    """`browser.pages = "auto"` resolved on this host: (pages, how they were chosen)."""
    reader = CgroupReader.detect()
    budget, source = memory_budget(settings, reader.read() if reader is not None else None)
    pages = auto_pages(settings, budget)
    return pages, (f"{pages} pages: budget {budget >> 20} MB ({source}) less "
                   f"{settings.oven_reserve_bytes >> 20} MB for oven and "
                   f"{BROWSER_BASE >> 20} MB for Chromium's base, at "
                   f"{settings.page_cost_bytes >> 20} MB a page")
