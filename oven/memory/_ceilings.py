"""Where Chromium runs, memory-wise: a cgroup of its own below oven's, one per renderer below it.

    <oven's cgroup>/                      (v2: oven itself moves to <oven's cgroup>/oven)
      oven-browser-<oven pid>/            limit: the budget less oven's reserve
        main/                             Chromium's main process, zygotes, GPU, utilities
        r-<renderer pid>/                 limit: the page ceiling, one renderer each

A page that outgrows its ceiling is killed by the kernel inside its own cgroup, at once and
alone: nothing waits for a sampler. The browser's cgroup is the backstop for what the
renderers' cgroups cannot see (GPU memory of WebGL pages, a renderer not yet moved): at its
limit the kernel kills inside it, preferring renderers (Chromium gives them oom_score_adj 300),
and oven's own cgroup never reaches its limit. Everything stays below oven's cgroup.

Where no cgroup can be made (v2 without a delegated subtree, no write access), the fallback is
the poller in RendererWatch: every renderer's anonymous RSS is read from statm at >= 20 Hz and a
renderer over the ceiling is SIGKILLed on the spot; V8's heap cap (--js-flags) covers the heap.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ._cgroup import CgroupReader, _read_int, _read_text

log = logging.getLogger(__name__)

Mechanism = Literal["cgroup-v1", "cgroup-v2", "poll", "off"]
BROWSER_PREFIX = "oven-browser-"


class CeilingUnavailable(Exception):
    """No cgroup can be made here; the message says why (it is shown in /status)."""


@dataclass(frozen=True)
class CeilingPlan:
    """What keeps pages within their ceiling, and the figures it enforces."""

    mechanism: Mechanism
    reason: str
    page_ceiling: int  # bytes a page (its renderer) may hold
    browser_limit: int | None  # bytes the browser's cgroup may hold (None: no cgroup)


def _write(path: Path, value: str) -> None:
    path.write_text(value)


class BrowserCgroup:
    """The browser's cgroup and its per-renderer children, v1 or v2 (see the module doc)."""

    def __init__(self, version: Literal["v1", "v2"], directory: Path, limit: int,
                 ceiling: int) -> None:
        self.version: Literal["v1", "v2"] = version
        self.directory = directory
        self.limit = limit
        self.ceiling = ceiling

    @property
    def main(self) -> Path:
        return self.directory / "main"

    @classmethod
    def create(cls, reader: CgroupReader | None, *, limit: int, ceiling: int,
               owner_pid: int | None = None) -> BrowserCgroup:
        """Make the browser's cgroup below `reader`'s (oven's own); CeilingUnavailable if not."""
        if reader is None:
            raise CeilingUnavailable("no memory cgroup found for oven's process")
        own = reader.directory
        if not os.access(own, os.W_OK):
            raise CeilingUnavailable(f"oven's cgroup {own} is not writable")
        sweep_stale(own)
        name = f"{BROWSER_PREFIX}{owner_pid if owner_pid is not None else os.getpid()}"
        directory = own / name
        self = cls(reader.version, directory, limit, ceiling)
        try:
            if reader.version == "v2":
                self._create_v2(own)
            else:
                self._create_v1()
        except OSError as exc:
            self.remove(timeout_s=0.5)
            raise CeilingUnavailable(f"cannot make {directory}: {exc}") from exc
        return self

    def _create_v1(self) -> None:
        d = self.directory
        d.mkdir(exist_ok=True)
        self._limit_v1(d, self.limit)
        self.main.mkdir(exist_ok=True)
        # The charges of what Chromium allocated before it was moved go with it.
        _try_write(self.main / "memory.move_charge_at_immigrate", "3")

    def _create_v2(self, own: Path) -> None:
        controllers = (_read_text(own / "cgroup.controllers") or "").split()
        if "memory" not in controllers:
            raise CeilingUnavailable(f"the memory controller is not delegated to {own}")
        subtree = (_read_text(own / "cgroup.subtree_control") or "").split()
        if "memory" not in subtree:
            # v2 lets a cgroup hand the memory controller to its children only while no
            # process lives in it: oven (and whatever else is there) moves to a leaf first.
            leaf = own / "oven"
            leaf.mkdir(exist_ok=True)
            for pid in (_read_text(own / "cgroup.procs") or "").split():
                with contextlib.suppress(ProcessLookupError, OSError):
                    _write(leaf / "cgroup.procs", pid)
            _write(own / "cgroup.subtree_control", "+memory")
        d = self.directory
        d.mkdir(exist_ok=True)
        _write(d / "memory.max", str(self.limit))
        _try_write(d / "memory.swap.max", "0")  # a page must not hide its growth in swap
        _write(d / "cgroup.subtree_control", "+memory")
        self.main.mkdir(exist_ok=True)

    @staticmethod
    def _limit_v1(d: Path, limit: int) -> None:
        _write(d / "memory.limit_in_bytes", str(limit))
        # With swap accounting on, memory+swap gets the same limit: no hiding in swap either.
        _try_write(d / "memory.memsw.limit_in_bytes", str(limit))

    def adopt(self, pids: list[int]) -> list[int]:
        """Move processes (Chromium's, at launch) into main/; returns the pids moved."""
        moved = []
        for pid in pids:
            try:
                _write(self.main / "cgroup.procs", str(pid))
            except ProcessLookupError:
                continue
            except OSError as exc:
                if exc.errno == errno.ESRCH:
                    continue
                raise
            moved.append(pid)
        return moved

    def members(self) -> set[int]:
        """Every pid in the browser's cgroup tree."""
        pids: set[int] = set()
        for procs in self.directory.glob("**/cgroup.procs"):
            pids.update(int(p) for p in (_read_text(procs) or "").split())
        return pids

    def confine(self, pid: int) -> Path:
        """Give renderer `pid` a cgroup of its own with the page ceiling and move it there.

        Raises MemoryError when v1 cannot move its charge (it already holds more than the
        ceiling), ProcessLookupError when it is gone.
        """
        d = self.directory / f"r-{pid}"
        d.mkdir(exist_ok=True)
        if self.version == "v2":
            _write(d / "memory.max", str(self.ceiling))
            _try_write(d / "memory.swap.max", "0")
        else:
            self._limit_v1(d, self.ceiling)
        try:
            _write(d / "cgroup.procs", str(pid))
        except OSError as exc:
            self.release(d)
            if exc.errno == errno.ESRCH:
                raise ProcessLookupError(pid) from exc
            if exc.errno == errno.ENOMEM:
                raise MemoryError(f"renderer {pid} holds more than the ceiling") from exc
            raise
        return d

    def oom_kills(self, d: Path) -> int:
        """OOM kills the kernel made inside cgroup `d`."""
        if self.version == "v2":
            events = _read_text(d / "memory.events") or ""
        else:
            events = _read_text(d / "memory.oom_control") or ""
        for line in events.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def peak(self, d: Path) -> int | None:
        return _read_int(d / ("memory.peak" if self.version == "v2" else
                              "memory.max_usage_in_bytes"))

    def figures(self) -> dict[str, int | None]:
        """The browser cgroup's own counters, for /status and the benchmark."""
        d = self.directory
        if self.version == "v2":
            events = _read_text(d / "memory.events") or ""
            keyed = dict(line.split(" ", 1) for line in events.splitlines() if " " in line)
            return {"current": _read_int(d / "memory.current"), "peak": self.peak(d),
                    "limit_hits": int(keyed.get("max", 0)), "oom_kills": self.oom_kills(d)}
        return {"current": _read_int(d / "memory.usage_in_bytes"), "peak": self.peak(d),
                "limit_hits": _read_int(d / "memory.failcnt"), "oom_kills": self.oom_kills(d)}

    def release(self, d: Path) -> None:
        """Remove a renderer's (empty) cgroup."""
        with contextlib.suppress(OSError):
            d.rmdir()

    def remove(self, *, timeout_s: float = 3.0) -> None:
        """Remove the whole tree once Chromium is gone (the kernel lags a little behind exits)."""
        deadline = time.monotonic() + timeout_s
        while True:
            if _rmtree_cgroups(self.directory) or time.monotonic() >= deadline:
                break
            time.sleep(0.05)  # no event tells us the last member has left
        if self.directory.exists():
            log.warning("could not remove cgroup %s: processes %s are still in it",
                        self.directory, sorted(self.members()))


def _try_write(path: Path, value: str) -> None:
    """Write a control file that not every kernel has or accepts (swap, charge moving)."""
    with contextlib.suppress(OSError):
        _write(path, value)


def _rmtree_cgroups(directory: Path) -> bool:
    """rmdir a cgroup and its children, deepest first; True when it is gone."""
    if not directory.is_dir():
        return True
    for child in sorted((p for p in directory.rglob("*") if p.is_dir()),
                        key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            child.rmdir()
    with contextlib.suppress(OSError):
        directory.rmdir()
    return not directory.exists()


def sweep_stale(own: Path) -> list[Path]:
    """Remove browser cgroups left by oven processes that are gone (rmdir only: a cgroup that
    still holds a process is not removed, and the orphan sweep kills such Chromiums first)."""
    removed = []
    for d in own.glob(f"{BROWSER_PREFIX}*"):
        suffix = d.name[len(BROWSER_PREFIX):]
        if not suffix.isdigit() or Path(f"/proc/{suffix}").exists():
            continue
        if _rmtree_cgroups(d):
            removed.append(d)
    return removed
