"""CPU-seconds and peak memory of a whole process tree, by component, read from /proc.

    sampler = TreeSampler(pid).start()
    ...                       # the work to measure
    usage = sampler.stop()    # usage.cpu_s["ffmpeg"], usage.total_cpu_s, usage.peak_pss_bytes

Every `interval` seconds the sampler lists /proc, finds the root's descendants (a new pid is
read once to learn its parent; a pid outside the tree is never read again) and adds each one's
utime+stime growth to its component. A process that ends between two samples loses the CPU it
spent since its last sample, and one that lives less than an interval is never seen at all; both
land in the cutime+cstime of the parent that reaps it, so a parent's cutime+cstime growth minus
what its reaped children were last seen at is added to the component of those children (or,
when none was seen, of the last children that parent was seen to reap: oven's Python reaps
ffmpeg).

Memory: the peak of the tree's summed RSS (every sample; shared pages counted in each process,
so it overstates) and of its summed PSS from smaps_rollup (every `pss_interval`, 0.5 s: shared
pages split between their users, the figure to quote), with that peak's split by component.

Components: `python` (the root, when it is Python), `playwright_driver` (node), `chromium_browser`
and `chromium_<type>` from Chromium's `--type=` switch (gpu, renderer, utility, zygote, ...),
`ffmpeg`, and `other`. Linux only.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def component(cmdline: list[str], comm: str, *, root: bool) -> str:
    """Which part of the stack a process is, from its command line."""
    # Chromium's zygote children rewrite their argv as one space-separated string.
    cmdline = " ".join(cmdline).split()
    exe = os.path.basename(cmdline[0]) if cmdline else comm
    if "chrom" in exe or comm.startswith("chrom"):
        kind = next((a.split("=", 1)[1] for a in cmdline if a.startswith("--type=")), "browser")
        return "chromium_" + {"gpu-process": "gpu", "crashpad-handler": "crashpad"}.get(kind, kind)
    if exe == "node" or comm == "node":
        return "playwright_driver"
    if exe.startswith("ffmpeg") or comm == "ffmpeg":
        return "ffmpeg"
    if root and exe.startswith("python"):
        return "python"
    return "other"


@dataclass
class Usage:
    """What the tree used between start() and stop()."""

    wall_s: float
    cpu_s: dict[str, float]
    peak_pss_bytes: int
    peak_pss_bytes_by_component: dict[str, int]  # the split at the moment of the peak
    peak_rss_bytes: int
    samples: int
    sampler_cpu_s: float  # the sampler's own thread, outside the tree

    @property
    def total_cpu_s(self) -> float:
        return sum(self.cpu_s.values())


@dataclass
class _Proc:
    pid: int
    start: int  # starttime, so a reused pid is a new process
    ppid: int
    comm: str
    kind: str
    own: int  # utime + stime, ticks, at the last sample
    reaped: int  # cutime + cstime, ticks, at the last sample
    reaps: str = "other"  # component of the children it was last seen to reap


def _stat(pid: int) -> tuple[str, list[str]] | None:
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        raw = os.read(fd, 2048).decode(errors="replace")
    except OSError:
        return None
    finally:
        os.close(fd)
    comm = raw[raw.find("(") + 1: raw.rfind(")")]
    return comm, raw[raw.rfind(")") + 2:].split()


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _vforked(stats: dict[int, tuple[str, list[str]]], pid: int, ppid: int) -> bool:
    """Whether `pid` is a vfork child that has not exec'd yet (Python's subprocess starts
    ffmpeg and webpmux so): it runs in its parent's memory, whose PSS its own smaps would count
    a second time. Its comm, virtual size and RSS are its parent's."""
    child, parent = stats.get(pid), stats.get(ppid)
    return (child is not None and parent is not None and child[0] == parent[0]
            and child[1][20:22] == parent[1][20:22])


class TreeSampler:
    """Samples the tree under `root` on a thread of its own until stop()."""

    def __init__(self, root: int, *, interval: float = 0.05, pss_interval: float = 0.5) -> None:
        self.root = root
        self.interval = interval
        # smaps_rollup walks page tables: ~3 ms a Chromium process, so PSS is read less often.
        self.pss_interval = pss_interval
        self._pss_at = 0.0
        self.procs: dict[int, _Proc] = {}
        self.outside: set[int] = set()
        self.cpu: dict[str, int] = {}
        self.peak_pss = 0
        self.peak_pss_split: dict[str, int] = {}
        self.peak_rss = 0
        self.samples = 0
        self.thread_cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)
        self._t0 = 0.0

    def start(self) -> TreeSampler:
        self._t0 = time.monotonic()
        self._sample(first=True)
        self._thread.start()
        return self

    def stop(self) -> Usage:
        self._stop.set()
        self._thread.join()
        self._sample()
        return Usage(
            wall_s=time.monotonic() - self._t0,
            cpu_s={k: v / TICK for k, v in sorted(self.cpu.items())},
            peak_pss_bytes=self.peak_pss, peak_rss_bytes=self.peak_rss,
            peak_pss_bytes_by_component=dict(sorted(self.peak_pss_split.items())),
            samples=self.samples, sampler_cpu_s=self.thread_cpu,
        )

    def _run(self) -> None:
        t0 = time.thread_time()
        while not self._stop.wait(self.interval):
            self._sample()
        self.thread_cpu = time.thread_time() - t0

    def _add(self, kind: str, ticks: int) -> None:
        if ticks > 0:
            self.cpu[kind] = self.cpu.get(kind, 0) + ticks

    def _sample(self, *, first: bool = False) -> None:
        self.samples += 1
        listed = {int(d) for d in os.listdir("/proc") if d.isdigit()}
        stats: dict[int, tuple[str, list[str]]] = {}
        for pid in listed:
            if pid in self.outside:
                continue
            got = _stat(pid)
            if got is not None:
                stats[pid] = got
        self.outside &= listed
        dead = [p for pid, p in self.procs.items()
                if pid not in stats or int(stats[pid][1][19]) != p.start]
        for p in dead:
            del self.procs[p.pid]
        # Newcomers join the tree when their parent is in it; parents are found first.
        members = set(self.procs) | {self.root}
        fresh = sorted((pid for pid in stats if pid not in self.procs),
                       key=lambda pid: int(stats[pid][1][19]))
        for pid in fresh:
            fields = stats[pid][1]
            if pid != self.root and int(fields[1]) not in members:
                self.outside.add(pid)
                continue
            members.add(pid)
            comm = stats[pid][0]
            kind = component(_cmdline(pid), comm, root=pid == self.root)
            # At the first sample what a process has already spent is not ours to count.
            own = int(fields[11]) + int(fields[12]) if first else 0
            reaped = int(fields[13]) + int(fields[14]) if first else 0
            self.procs[pid] = _Proc(pid, int(fields[19]), int(fields[1]), comm, kind, own, reaped)
        gone_by_parent: dict[int, list[_Proc]] = {}
        for p in dead:
            gone_by_parent.setdefault(p.ppid, []).append(p)
        rss = 0
        for pid, p in self.procs.items():
            comm, fields = stats[pid]
            if comm != p.comm or p.kind == "chromium_zygote":
                # exec changes comm; zygote children take their --type= argv after the fork.
                p.comm, p.kind = comm, component(_cmdline(pid), comm, root=pid == self.root)
            own = int(fields[11]) + int(fields[12])
            reaped = int(fields[13]) + int(fields[14])
            self._add(p.kind, own - p.own)
            gone = gone_by_parent.get(pid, [])
            # What the reaped children spent after their last sample, or in all their life.
            unseen = reaped - p.reaped - sum(c.own + c.reaped for c in gone)
            if gone:
                p.reaps = max(gone, key=lambda c: c.own).kind
            self._add(p.reaps, unseen)
            p.own, p.reaped, p.ppid = own, reaped, int(fields[1])
            rss += int(fields[21]) * PAGE
        self.peak_rss = max(self.peak_rss, rss)
        if first or time.monotonic() - self._pss_at >= self.pss_interval:
            self._pss_at = time.monotonic()
            split: dict[str, int] = {}
            for pid, p in list(self.procs.items()):
                if _vforked(stats, pid, p.ppid):
                    continue
                split[p.kind] = split.get(p.kind, 0) + _pss(pid)
            if sum(split.values()) > self.peak_pss:
                self.peak_pss, self.peak_pss_split = sum(split.values()), split
