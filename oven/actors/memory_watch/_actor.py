"""MemoryWatch actor: the whole tree's memory against a budget, acted on before the kernel does.

Every `cheap_interval_s` it samples the tree (statm RSS of every process, smaps_rollup PSS of a
few in rotation, the cgroup's figures); a full PSS sweep runs every `pss_interval_s` and whenever
the estimate crosses a watermark, so state changes rest on PSS, the honest figure. States:

    normal ──(≥ soft)──▶ soft: no new capture starts (/ready 503 `memory`), pool shrinks by one
    soft ───(≥ hard)──▶ hard: the job whose page holds the most heap fails with "memory budget
                              exceeded" if it alone is the cause; otherwise the browser is
                              recycled (its jobs retried)
    back below a watermark minus a hysteresis margin ──▶ the state below
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from oven import metrics
from oven.actors.browser_pool import FailForMemory, LimitPages, PoolStatus, Recycle, SlotHeaps
from oven.actors.runtime import ActorContext, AsyncActor, ask_async
from oven.config import Settings
from oven.memory import (
    COMPONENTS,
    CgroupMemory,
    CgroupReader,
    MemorySettings,
    TreeSampler,
    memory_budget,
)
from oven.readiness import ReadinessBoard

log = logging.getLogger(__name__)

HYSTERESIS = 0.05  # share of the budget below a watermark before its state is left
HARD_COOLDOWN_S = 5.0  # time for memory to settle after a hard-watermark action
# A recycle frees the whole browser; if the tree is still over the hard watermark right after,
# the budget is below oven's idle footprint and recycling again would only loop.
RECYCLE_COOLDOWN_S = 60.0


class Pressure(enum.IntEnum):
    NORMAL = 0
    SOFT = 1
    HARD = 2


@dataclass(frozen=True)
class MemoryStatus:
    """Ask: figures for /status."""


class MemoryWatch(AsyncActor):
    def __init__(self, ctx: ActorContext, settings: Settings, board: ReadinessBoard) -> None:
        super().__init__(ctx)
        self.settings: MemorySettings = settings.memory
        self.pages = settings.browser.pages
        # An api instance runs no browser: nothing to ask it, nothing to log about not asking.
        self.has_browser = settings.cluster.role != "api"
        self.board = board
        self.state = Pressure.NORMAL
        self.cgroup: CgroupReader | None = None
        self.last_cgroup: CgroupMemory | None = None
        self.sampler: TreeSampler | None = None
        self.budget, self.budget_source = 0, ""
        self.figure = 0  # the tree's PSS (estimated between full sweeps)
        self.by_component: dict[str, int] = {}
        self.last_full = 0.0
        self.last_hard_action = 0.0
        self.last_recycle = float("-inf")
        self._sampler_cpu = 0.0

    async def start_async(self) -> None:
        self.cgroup = CgroupReader.detect()
        self.last_cgroup = self.cgroup.read() if self.cgroup else None
        self.budget, self.budget_source = memory_budget(self.settings, self.last_cgroup)
        metrics.MEMORY_BUDGET.set(self.budget)
        metrics.MEMORY_PRESSURE.set(0)
        self.sampler = TreeSampler(os.getpid(), self.settings)
        log.info("memory budget %d MB (%s); cgroup %s", self.budget >> 20, self.budget_source,
                 self.cgroup.version if self.cgroup else "not found")
        self.own("sampler", self._watch)

    async def stop_async(self) -> None:
        self.board.clear("memory")

    def reconfigure(self, settings: Any) -> None:
        self.settings = settings.memory
        self.pages = settings.browser.pages
        self.budget, self.budget_source = memory_budget(self.settings, self.last_cgroup)
        metrics.MEMORY_BUDGET.set(self.budget)

    def receive(self, message: Any) -> Any:
        match message:
            case MemoryStatus():
                return self.defer(self._status())
        return super().receive(message)

    # -- sampling -------------------------------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            try:
                await self._tick()
            except Exception:
                log.exception("memory sampling failed; trying again")
            await asyncio.sleep(self.settings.cheap_interval_s)

    async def _tick(self) -> None:
        assert self.sampler is not None
        now = time.monotonic()
        full = now - self.last_full >= self.settings.pss_interval_s
        # Reading /proc takes milliseconds (tens for a full PSS sweep): off the actor's loop.
        sample = await asyncio.to_thread(self.sampler.sample, full_pss=full)
        if not full and self._classify(sample.total_pss) != self.state:
            # The estimate crossed a watermark: confirm on PSS before acting.
            sample = await asyncio.to_thread(self.sampler.sample, full_pss=True)
            full = True
        if full:
            self.last_full = now
        if self.cgroup is not None:
            self.last_cgroup = await asyncio.to_thread(self.cgroup.read)
        self._export(sample)
        await self._act(self._classify(sample.total_pss))

    def _classify(self, figure: int) -> Pressure:
        soft = self.budget * self.settings.soft_watermark
        hard = self.budget * self.settings.hard_watermark
        margin = self.budget * HYSTERESIS
        if figure >= hard or (self.state is Pressure.HARD and figure >= hard - margin):
            return Pressure.HARD
        if figure >= soft or (self.state >= Pressure.SOFT and figure >= soft - margin):
            return Pressure.SOFT
        return Pressure.NORMAL

    def _export(self, sample: Any) -> None:
        assert self.sampler is not None
        self.figure = sample.total_pss
        self.by_component = dict(sample.pss_by_component)
        for component in COMPONENTS:
            metrics.MEMORY_BYTES.labels(component=component, measure="pss").set(
                sample.pss_by_component.get(component, 0))
            metrics.MEMORY_BYTES.labels(component=component, measure="rss").set(
                sample.rss_by_component.get(component, 0))
        spent = self.sampler.cpu_seconds - self._sampler_cpu
        self._sampler_cpu = self.sampler.cpu_seconds
        metrics.MEMORY_SAMPLER_SECONDS.inc(max(0.0, spent))
        cg = self.last_cgroup
        if cg is not None:
            for name in ("current", "peak", "limit", "high"):
                value = getattr(cg, name)
                if value is not None:
                    metrics.CGROUP_MEMORY.labels(file=cg.sources.get(name, name)).set(value)

    # -- acting ---------------------------------------------------------------------------------

    async def _act(self, state: Pressure) -> None:
        if state != self.state:
            log.warning("memory %s -> %s: tree PSS %d MB of budget %d MB (%s)",
                        self.state.name.lower(), state.name.lower(), self.figure >> 20,
                        self.budget >> 20, _top(self.by_component))
            previous, self.state = self.state, state
            metrics.MEMORY_PRESSURE.set(int(state))
            if state >= Pressure.SOFT and previous is Pressure.NORMAL:
                self.board.set("memory", f"tree PSS {self.figure >> 20} MB of "
                                         f"{self.budget >> 20} MB budget")
                metrics.MEMORY_ACTIONS.labels(action="pause_captures").inc()
                await self._tell_browser(LimitPages(max(1, self.pages - 1)))
                metrics.MEMORY_ACTIONS.labels(action="shrink_pool").inc()
            elif state is Pressure.NORMAL:
                self.board.clear("memory")
                await self._tell_browser(LimitPages(None))
                metrics.MEMORY_ACTIONS.labels(action="resume").inc()
        if self.state is Pressure.HARD and (
                time.monotonic() - self.last_hard_action >= HARD_COOLDOWN_S):
            self.last_hard_action = time.monotonic()
            await self._hard_action()

    async def _hard_action(self) -> None:
        over = self.figure - int(self.budget * self.settings.soft_watermark)
        heaps: dict[str, int] = await self._tell_browser(SlotHeaps()) or {}
        if heaps:
            job_id, heap = max(heaps.items(), key=lambda item: item[1])
            # One page is the cause when its heap alone accounts for the overshoot.
            if heap >= max(over, 0) and heap >= self.budget * 0.1:
                detail = (f"the page held {heap >> 20} MB of JS heap; the tree reached "
                          f"{self.figure >> 20} MB of a {self.budget >> 20} MB budget")
                log.warning("memory: failing job=%s: %s", job_id, detail)
                metrics.MEMORY_ACTIONS.labels(action="fail_job").inc()
                await self._tell_browser(FailForMemory(job_id, detail))
                return
        if time.monotonic() - self.last_recycle < RECYCLE_COOLDOWN_S:
            log.error("memory: still over the hard watermark (%d MB of %d MB) after a browser "
                      "recycle: the budget is below what oven needs idle; raise memory.budget "
                      "or lower browser.pages", self.figure >> 20, self.budget >> 20)
            return
        self.last_recycle = time.monotonic()
        log.warning("memory: recycling the browser at %d MB of %d MB", self.figure >> 20,
                    self.budget >> 20)
        metrics.MEMORY_ACTIONS.labels(action="recycle_browser").inc()
        await self._tell_browser(Recycle(f"memory budget: tree PSS {self.figure >> 20} MB"),
                                 timeout=60)

    async def _tell_browser(self, message: Any, *, timeout: float = 5) -> Any:
        if not self.has_browser:
            return None
        try:
            return await ask_async(self.ctx.lookup.ref("browser"), message, timeout=timeout)
        except Exception as exc:  # a restarting browser actor: try again on the next tick
            log.info("memory: browser did not take %s: %s", type(message).__name__, exc)
            return None

    async def _status(self) -> dict[str, Any]:
        cg = self.last_cgroup
        pool = await self._tell_browser(PoolStatus(), timeout=2) or {}
        return {
            "state": self.state.name.lower(),
            "budget_bytes": self.budget,
            "budget_source": self.budget_source,
            "soft_bytes": int(self.budget * self.settings.soft_watermark),
            "hard_bytes": int(self.budget * self.settings.hard_watermark),
            "tree_pss_bytes": self.figure,
            "pss_by_component": self.by_component,
            "cgroup": None if cg is None else {
                "version": cg.version, "current": cg.current, "peak": cg.peak, "limit": cg.limit,
                "high": cg.high, "events": cg.events, "sources": cg.sources,
                "working_set": cg.working_set},
            # How each page is held to its ceiling, and why that way (BrowserPool's watch).
            "ceiling": pool.get("memory_ceiling"),
            "sampler_cpu_seconds": self.sampler.cpu_seconds if self.sampler else 0.0,
        }


def _top(by_component: dict[str, int]) -> str:
    parts = sorted(by_component.items(), key=lambda item: -item[1])[:4]
    return ", ".join(f"{name} {value >> 20} MB" for name, value in parts if value)
