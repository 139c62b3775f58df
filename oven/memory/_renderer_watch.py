"""RendererWatch: puts each new Chromium renderer under the page ceiling and reports its death.

One thread, ticking every `interval_s` (20 ms by default), reads the browser's process tree from
/proc (a zygote's `children` file, microseconds). For each renderer it sees first it makes a
cgroup with the ceiling and moves the renderer there (mechanism cgroup-v1/-v2); on every tick it
also reads each renderer's anonymous RSS from statm and SIGKILLs one over the ceiling (the whole
defence where no cgroup can be made, and a guard for a renderer not yet moved otherwise). When a
renderer is gone it records why: an OOM kill in its own cgroup, oven's kill, or neither.

A thread, not a task on the BrowserPool's loop: that loop decodes and writes frames, and a
killer that waits for it would not be as fast as the allocation it races.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from ._ceilings import BrowserCgroup, CeilingPlan
from ._sampler import _read_small
from ._verdict import RendererDeath

log = logging.getLogger(__name__)

_PAGE = os.sysconf("SC_PAGE_SIZE")
# The browser's own children (zygotes, GPU, utilities) change rarely; read them every N ticks.
_MAIN_EVERY = 10
_DEATHS_KEPT = 128
_CLAIM_WINDOW_S = 2.0  # a page's crash and its renderer's recorded death are this close


def _children(pid: int) -> list[int]:
    """Children of every thread of `pid` (Chromium forks from its launcher thread too)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        data = _read_small(f"/proc/{pid}/task/{tid}/children", 65536)
        if data:
            out.extend(int(x) for x in data.split())
    return out


def _process_type(pid: int) -> str | None:
    """Chromium's --type= of a process ("" for the main process), None when gone."""
    data = _read_small(f"/proc/{pid}/cmdline", 4096)
    if data is None:
        return None
    # Chromium rewrites its process title as one space-separated string, so the switch is
    # searched for, not read from an argv slot; it comes early, within the first 4 KB.
    at = data.find(b" --type=")
    if at < 0:
        at = data.find(b"\0--type=")
    if at < 0:
        return ""
    value = data[at + 8:]
    end = min((i for i in (value.find(b" "), value.find(b"\0")) if i >= 0), default=len(value))
    return value[:end].decode(errors="replace")


def _alive(pid: int) -> bool:
    data = _read_small(f"/proc/{pid}/stat", 512)
    if not data:
        return False
    return data[data.rfind(b")") + 2:][:1] not in (b"Z", b"X")


def anon_rss(pid: int) -> int | None:
    """Resident bytes not backed by files (statm resident - shared): what a page allocates."""
    data = _read_small(f"/proc/{pid}/statm", 256)
    if not data:
        return None
    parts = data.split()
    if len(parts) < 3:
        return None
    return (int(parts[1]) - int(parts[2])) * _PAGE


def list_renderers(browser_pid: int) -> set[int]:
    """Live renderer pids below a Chromium main process (fresh from /proc; any thread)."""
    found: set[int] = set()
    for child in _children(browser_pid):
        kind = _process_type(child)
        if kind == "renderer" and _alive(child):
            found.add(child)
        elif kind == "zygote":
            found.update(g for g in _children(child)
                         if _process_type(g) == "renderer" and _alive(g))
    return found


class RendererWatch:
    """Enforces a CeilingPlan on the renderers of adopted browsers (see the module doc)."""

    def __init__(self, plan: CeilingPlan, cgroup: BrowserCgroup | None, *,
                 interval_s: float = 0.02) -> None:
        self.plan = plan
        self.cgroup = cgroup
        self.interval_s = interval_s
        self._browsers: set[int] = set()
        self._zygotes: dict[int, list[int]] = {}
        self._direct: dict[int, list[int]] = {}
        self._renderers: dict[int, Path | None] = {}  # pid -> its cgroup (None: polled only)
        self._killed: dict[int, int] = {}  # pid -> anonymous RSS when oven killed it
        self._deaths: collections.deque[RendererDeath] = collections.deque(maxlen=_DEATHS_KEPT)
        self._claimed: set[tuple[int, float]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ticks = 0
        self.moved = 0
        self.kills = 0
        self.tick_seconds = 0.0  # CPU the watch has spent

    # -- lifecycle ------------------------------------------------------------------------------

    def adopt(self, browser_pid: int) -> None:
        """Watch this Chromium; with a cgroup, move its whole tree into the browser's cgroup
        first (repeated until a pass finds nothing new: it may fork while we move it)."""
        if self.cgroup is not None:
            for _ in range(50):
                tree = [browser_pid, *_descendants(browser_pid)]
                if not self.cgroup.adopt([p for p in tree if p not in self.cgroup.members()]):
                    break
        with self._lock:
            self._browsers.add(browser_pid)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="RendererWatch", daemon=True)
            self._thread.start()

    def forget(self, browser_pid: int) -> None:
        with self._lock:
            self._browsers.discard(browser_pid)

    def halt(self) -> None:
        """Stop the thread (any thread may call this; the cgroups stay until `stop`)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    def stop(self) -> None:
        """Stop the thread and remove the cgroups (once Chromium is gone)."""
        self.halt()
        if self.cgroup is not None:
            self.cgroup.remove()

    # -- the tick -------------------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._stop.wait(self.interval_s):
            started = time.thread_time()
            try:
                self._tick()
                failures = 0
            except Exception:
                failures += 1
                # Logged, never fatal: a watch that stops would leave pages without a ceiling.
                if failures in (1, 10) or failures % 1000 == 0:
                    log.exception("renderer watch tick failed (%d in a row)", failures)
            self.tick_seconds += time.thread_time() - started

    def _tick(self) -> None:
        self._ticks += 1
        with self._lock:
            browsers = set(self._browsers)
        live: set[int] = set()
        for browser in browsers:
            if self._ticks % _MAIN_EVERY == 1 or browser not in self._zygotes:
                self._read_main(browser)
            for parent in [*self._zygotes.get(browser, []), browser]:
                for pid in (_children(parent) if parent != browser
                            else self._direct.get(browser, [])):
                    known = pid in self._renderers or _process_type(pid) == "renderer"
                    if known and _alive(pid):
                        live.add(pid)
        for pid in live - self._renderers.keys():
            self._new_renderer(pid)
        ceiling = self.plan.page_ceiling
        for pid in live:
            if self._renderers.get(pid) is not None:
                continue  # its own cgroup holds it to the ceiling, at the kernel's speed
            anon = anon_rss(pid)
            if anon is not None and anon > ceiling and pid not in self._killed:
                self._kill(pid, anon)
        for pid in self._renderers.keys() - live:
            self._gone(pid)

    def _read_main(self, browser: int) -> None:
        zygotes, direct = [], []
        for child in _children(browser):
            kind = _process_type(child)
            if kind == "zygote":
                zygotes.append(child)
            elif kind == "renderer":
                direct.append(child)
        self._zygotes[browser], self._direct[browser] = zygotes, direct

    def _new_renderer(self, pid: int) -> None:
        where: Path | None = None
        if self.cgroup is not None:
            try:
                where = self.cgroup.confine(pid)
                self.moved += 1
            except ProcessLookupError:
                return
            except MemoryError:
                self._renderers[pid] = None
                self._kill(pid, anon_rss(pid) or 0)
                return
            except OSError as exc:
                log.warning("renderer %d could not be moved to its cgroup (%s); polled only",
                            pid, exc)
        self._renderers[pid] = where

    def _kill(self, pid: int, anon: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self._killed[pid] = anon
        self.kills += 1
        log.warning("renderer %d killed at %d MB: over the page ceiling of %d MB", pid,
                    anon >> 20, self.plan.page_ceiling >> 20)

    def _gone(self, pid: int) -> None:
        where = self._renderers.pop(pid)
        killed = self._killed.pop(pid, None)
        ceiling = self.plan.page_ceiling
        if killed is not None:
            death = RendererDeath(pid, time.monotonic(), True, ceiling, killed,
                                  f"killed by oven at {killed >> 20} MB")
        elif where is not None and self.cgroup is not None:
            oom = self.cgroup.oom_kills(where)
            peak = self.cgroup.peak(where)
            death = RendererDeath(pid, time.monotonic(), oom > 0, ceiling, peak,
                                  "oom_kill in its cgroup" if oom else "exited")
        else:
            death = RendererDeath(pid, time.monotonic(), False, ceiling, None, "exited")
        if where is not None and self.cgroup is not None:
            self.cgroup.release(where)
        with self._lock:
            self._deaths.append(death)
        if death.over_ceiling:
            log.warning("renderer %d died over its ceiling of %d MB (%s)", pid, ceiling >> 20,
                        death.how)

    # -- questions ------------------------------------------------------------------------------

    @staticmethod
    def renderers_below(browser_pid: int) -> set[int]:
        """Live renderer pids below one Chromium main process, read fresh from /proc."""
        return list_renderers(browser_pid)

    def renderers(self) -> set[int]:
        """Renderer pids of the adopted browsers, read fresh (callable from any thread)."""
        with self._lock:
            browsers = set(self._browsers)
        found: set[int] = set()
        for browser in browsers:
            found |= list_renderers(browser)
        return found

    def deaths(self) -> list[RendererDeath]:
        with self._lock:
            return list(self._deaths)

    def memory_death_since(self, since: float) -> RendererDeath | None:
        """The latest renderer death over the ceiling recorded at or after `since` (monotonic)."""
        with self._lock:
            recent = [d for d in self._deaths if d.over_ceiling and d.at >= since]
        return recent[-1] if recent else None

    def claim(self, own: set[int], others: set[int], at: float) -> RendererDeath | None:
        """The death of a page's renderer: one of `own` if recorded, else an unclaimed death
        over the ceiling close to `at` of a renderer no other page holds."""
        with self._lock:
            candidates = [d for d in self._deaths if (d.pid, d.at) not in self._claimed]
            exact = [d for d in candidates if d.pid in own]
            near = [d for d in candidates if d.over_ceiling and d.pid not in others
                    and abs(d.at - at) <= _CLAIM_WINDOW_S]
            found = (exact or near)[0] if exact or near else None
            if found is not None:
                self._claimed.add((found.pid, found.at))
            return found

    async def death_of(self, own: set[int], others: set[int], *, at: float,
                       timeout_s: float = 1.0) -> RendererDeath | None:
        """Wait (bounded) for the watch to record the death of a page's renderer."""
        deadline = time.monotonic() + timeout_s
        while True:
            death = self.claim(own, others, at)
            if death is not None or time.monotonic() >= deadline:
                return death
            await asyncio.sleep(self.interval_s)  # the watch records within a tick or two

    def status(self) -> dict[str, Any]:
        plan = self.plan
        deaths = self.deaths()
        out: dict[str, Any] = {
            "mechanism": plan.mechanism,
            "reason": plan.reason,
            "page_ceiling_bytes": plan.page_ceiling,
            "browser_limit_bytes": plan.browser_limit,
            "poll_interval_s": self.interval_s,
            "renderers": len(self._renderers),
            "renderers_moved": self.moved,
            "renderers_killed_by_oven": self.kills,
            "deaths_over_ceiling": sum(1 for d in deaths if d.over_ceiling),
            "watch_cpu_seconds": round(self.tick_seconds, 3),
        }
        if self.cgroup is not None:
            out["cgroup"] = str(self.cgroup.directory)
            out["browser_cgroup"] = self.cgroup.figures()
        return out


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    stack = [pid]
    while stack:
        for child in _children(stack.pop()):
            out.append(child)
            stack.append(child)
    return out
