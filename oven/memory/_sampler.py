"""Sampling a process tree's memory: statm RSS every tick, PSS from smaps_rollup in rotation.

RSS over-counts a Chromium tree about 3x (every process counts the shared pages in full); PSS
splits shared pages between the processes mapping them, so its sum is the tree's real footprint.
PSS costs 0.6-15 ms a Chromium process (the kernel walks every mapping), so it is read for a few
processes per tick and cached; RSS (statm, ~10 us) is read for all of them every tick.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ._settings import COMPONENTS, MemorySettings

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# A pid's command line is read again while it is this young: a fork shows its parent's command
# line until it execs (sh starting sleep, Chromium's zygote forking a renderer).
_RECLASSIFY_FOR_S = 2.0
_COMMAND_CHARS = 120
# Between full scans only new pids and the tree's own are read from /proc/<pid>/stat (the rest of
# the host keeps its parent); a full scan this often catches pid reuse and re-parenting.
_FULL_SCAN_EVERY_S = 2.0
# A full PSS sweep reads again only a process whose PSS may have moved: one it never read, one
# whose RSS moved by more than this much since, or one read this long ago; and every process
# when the tree's membership changed (a process that goes or comes shifts the split of the
# pages it shares). Measured on an idle `oven serve` beside a test run: the PSS reads were 56 %
# of oven's own CPU at rest, 2.5 CPU-s a minute in all.
_PSS_MAX_AGE_S = 30.0
_PSS_RSS_MOVE = 2 << 20  # bytes; or 2 % of the RSS, whichever is more


@dataclass
class ProcessFigure:
    pid: int
    component: str
    rss: int
    pss: int | None  # the latest PSS read (maybe a rotation old); None before the first read
    command: str  # the first ~120 characters of the command line


@dataclass
class TreeSample:
    at: float  # time.monotonic()
    rss_by_component: dict[str, int]
    pss_by_component: dict[str, int]  # a process without a PSS yet counts its RSS
    total_rss: int
    total_pss: int
    processes: list[ProcessFigure] = field(default_factory=list)
    pss_estimated_pids: list[int] = field(default_factory=list)


def _read_small(path: str, size: int = 4096) -> bytes | None:
    # os.open/os.read: a buffered open() costs several times more, and this runs per process
    # per tick.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, size)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_rss(pid: int) -> int | None:
    """Resident bytes from /proc/<pid>/statm (None when the process is gone)."""
    data = _read_small(f"/proc/{pid}/statm", 256)
    if not data:
        return None
    parts = data.split()
    return int(parts[1]) * _PAGE_SIZE if len(parts) > 1 else None


def read_pss(pid: int) -> int | None:
    """Proportional set size in bytes from /proc/<pid>/smaps_rollup (None when gone)."""
    data = _read_small(f"/proc/{pid}/smaps_rollup", 8192)
    if not data:
        return None
    at = data.find(b"\nPss:")
    if at < 0:
        return None
    return int(data[at + 5:data.index(b"kB", at)]) * 1024


def read_cmdline(pid: int) -> list[str]:
    data = _read_small(f"/proc/{pid}/cmdline", 65536)
    if not data:
        return []
    return data.rstrip(b"\0").decode("utf-8", "replace").split("\0")


def _stat_fields(pid: str) -> tuple[int, str, int] | None:
    """(ppid, state, start time in ticks) from /proc/<pid>/stat."""
    data = _read_small(f"/proc/{pid}/stat", 1024)
    if not data:
        return None
    # The command name in parentheses may hold spaces and ')': split after the last ')'.
    rest = data[data.rfind(b")") + 2:].split()
    if len(rest) < 20:
        return None
    return int(rest[1]), rest[0].decode(), int(rest[19])


def _process_table() -> dict[int, tuple[int, str, int]]:
    """pid -> (ppid, state, start time) for every process on the host."""
    table: dict[int, tuple[int, str, int]] = {}
    with os.scandir("/proc") as entries:
        for entry in entries:
            if entry.name.isdigit() and (fields := _stat_fields(entry.name)) is not None:
                table[int(entry.name)] = fields
    return table


@dataclass
class _Known:
    start: int  # start time in clock ticks: tells a reused pid from the process we knew
    first_seen: float
    cmdline: list[str]
    rule_component: str
    pss: int | None = None
    pss_read_at: float = float("-inf")
    rss_at_pss: int = 0  # RSS when `pss` was read: growth since then is added to the estimate

    @property
    def command(self) -> str:
        return " ".join(" ".join(self.cmdline).split())[:_COMMAND_CHARS]


class TreeSampler:
    """Memory of one process tree (root and descendants, plus owner-attributed `extra` pids).

    Not thread-safe: one thread samples. `cpu_seconds` is the CPU this sampler has used.
    """

    def __init__(
        self,
        root_pid: int,
        settings: MemorySettings,
        *,
        extra: Callable[[], dict[int, str]] | None = None,
        groups: Sequence[tuple[str, str]] = (),
        root_component: str | None = "oven",
        include_root: bool = True,
    ) -> None:
        """`extra` maps pid -> component for processes their owner attributes (PTY children,
        ffmpeg); they and their descendants override the rules. `groups` are (name, pattern)
        rules tried before the settings' rules (names outside COMPONENTS are reported too).
        `root_component` names the root; None classifies it by the rules like any process.
        `include_root=False` walks the root's descendants without measuring the root itself
        (`oven mem` roots the tree at itself, a subreaper, to keep orphans in view).
        """
        self.root_pid = root_pid
        self.settings = settings
        self.cpu_seconds = 0.0
        self._extra = extra
        self._root_component = root_component
        self._include_root = include_root
        self._rules: list[tuple[str, re.Pattern[str]]] = [
            (name, re.compile(pattern)) for name, pattern in groups
        ] + [(r.component, re.compile(r.pattern)) for r in settings.component_rules]
        names: list[str] = list(COMPONENTS)
        names += [n for n, _ in self._rules if n not in names]
        self.components: tuple[str, ...] = tuple(names)
        self._known: dict[int, _Known] = {}
        self._rotation: list[int] = []
        self._rotation_started = float("-inf")
        self._swept: set[int] = set()  # the tree at the last full PSS sweep
        self._table: dict[int, tuple[int, str, int]] = {}
        self._table_scanned = float("-inf")

    def classify(self, pid: int, cmdline: list[str]) -> str:
        """The component the rules give a command line (the root pid is `root_component`)."""
        if pid == self.root_pid and self._root_component is not None:
            return self._root_component
        joined = " ".join(cmdline)
        for name, pattern in self._rules:
            if pattern.search(joined):
                return name
        return "other"

    def sample(self, *, full_pss: bool = False) -> TreeSample:
        started = time.thread_time()
        try:
            return self._sample(full_pss)
        finally:
            self.cpu_seconds += time.thread_time() - started

    def _sample(self, full_pss: bool) -> TreeSample:
        now = time.monotonic()
        tree = self._tree()
        live = {pid for pid, _, _ in tree}
        for gone in self._known.keys() - live:
            del self._known[gone]
        for pid in self._pss_targets(live, now, full_pss):
            if (known := self._known.get(pid)) is not None:
                known.pss = read_pss(pid)
                known.pss_read_at = now
                known.rss_at_pss = read_rss(pid) or 0
        rss_by = dict.fromkeys(self.components, 0)
        pss_by = dict.fromkeys(self.components, 0)
        processes: list[ProcessFigure] = []
        estimated: list[int] = []
        for pid, owner_component, _ in tree:
            rss = read_rss(pid)
            known = self._known.get(pid)
            if not rss or known is None:
                continue  # exited since the scan, or exiting (its memory is already released)
            component = owner_component or known.rule_component
            rss_by[component] = rss_by.get(component, 0) + rss
            pss = known.pss
            if pss is None:
                estimated.append(pid)
            else:
                # Between rotations a process's PSS moves with its RSS: a renderer allocating
                # hundreds of MB a second must show up within one cheap tick, not one rotation.
                pss = max(0, pss + rss - known.rss_at_pss)
            pss_by[component] = pss_by.get(component, 0) + (rss if pss is None else pss)
            processes.append(ProcessFigure(
                pid, component, rss, pss, known.command))
        processes.sort(key=lambda p: p.pss if p.pss is not None else p.rss, reverse=True)
        return TreeSample(
            at=now,
            rss_by_component=rss_by,
            pss_by_component=pss_by,
            total_rss=sum(rss_by.values()),
            total_pss=sum(pss_by.values()),
            processes=processes,
            pss_estimated_pids=estimated,
        )

    def _tree(self) -> list[tuple[int, str | None, int]]:
        """(pid, component named by an owner or None, start) for the live, non-zombie tree."""
        now = time.monotonic()
        table = self._scan(now)
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        extra = self._extra() if self._extra is not None else {}
        roots: list[tuple[int, str | None]] = [(self.root_pid, None)]
        roots += [(pid, component) for pid, component in extra.items() if pid != self.root_pid]
        out: list[tuple[int, str | None, int]] = []
        seen: set[int] = set()
        for root, root_component in roots:
            stack: list[tuple[int, str | None]] = [(root, root_component)]
            while stack:
                pid, inherited = stack.pop()
                if pid in seen or pid not in table:
                    continue
                seen.add(pid)
                # An owner's attribution covers the pid itself and everything below it.
                component = extra.get(pid, inherited)
                stack.extend((child, component) for child in children.get(pid, ()))
                _, state, start = table[pid]
                if state == "Z" or (pid == self.root_pid and not self._include_root):
                    continue
                self._remember(pid, start, now)
                out.append((pid, component, start))
        return out

    def _scan(self, now: float) -> dict[int, tuple[int, str, int]]:
        """The host's process table, read in full only every _FULL_SCAN_EVERY_S (a host has
        hundreds of processes: reading each stat every tick was most of the cheap tier's cost)."""
        if now - self._table_scanned >= _FULL_SCAN_EVERY_S:
            self._table = _process_table()
            self._table_scanned = now
            return self._table
        table = self._table
        with os.scandir("/proc") as entries:
            pids = {int(e.name) for e in entries if e.name.isdigit()}
        for gone in table.keys() - pids:
            del table[gone]
        for pid in (pids - table.keys()) | (pids & (self._known.keys() | {self.root_pid})):
            fields = _stat_fields(str(pid))
            if fields is None:
                table.pop(pid, None)
            else:
                table[pid] = fields
        return table

    def _remember(self, pid: int, start: int, now: float) -> None:
        known = self._known.get(pid)
        if known is not None and known.start != start:
            known = None  # the pid was reused: a different process
        if known is None:
            cmdline = read_cmdline(pid)
            self._known[pid] = _Known(start, now, cmdline, self.classify(pid, cmdline))
        elif now - known.first_seen < _RECLASSIFY_FOR_S:
            cmdline = read_cmdline(pid)
            if cmdline and cmdline != known.cmdline:
                known.cmdline = cmdline
                known.rule_component = self.classify(pid, cmdline)
                known.pss = None  # read before the exec: another program's memory

    def _pss_may_have_moved(self, pid: int, now: float) -> bool:
        known = self._known[pid]
        if known.pss is None or now - known.pss_read_at >= _PSS_MAX_AGE_S:
            return True
        rss = read_rss(pid) or 0
        return abs(rss - known.rss_at_pss) > max(_PSS_RSS_MOVE, known.rss_at_pss // 50)

    def _pss_targets(self, live: Iterable[int], now: float, full: bool) -> list[int]:
        """Which pids get their smaps_rollup read this tick."""
        pids = sorted(live)
        if full:
            self._rotation = []
            self._rotation_started = now
            members, self._swept = self._swept, set(pids)
            if members != self._swept:
                return pids
            return [pid for pid in pids if self._pss_may_have_moved(pid, now)]
        per_tick = self.settings.pss_per_tick
        # Processes never read come first: until then they are counted at their RSS.
        targets = [pid for pid in pids if self._known[pid].pss is None][:per_tick]
        live_set = set(pids)
        self._rotation = [pid for pid in self._rotation if pid in live_set]
        if not self._rotation and now - self._rotation_started >= self.settings.pss_interval_s:
            self._rotation = pids
            self._rotation_started = now
        while self._rotation and len(targets) < per_tick:
            pid = self._rotation.pop(0)
            # Skip what this rotation has read already (as a newcomer, or by a full sweep).
            if pid not in targets and self._known[pid].pss_read_at < self._rotation_started:
                targets.append(pid)
        return targets
