"""The memory figures of the cgroup oven runs in, v2 (production) or v1 (dev/CI), labelled by file.

v1 counts page cache in usage_in_bytes and max_usage_in_bytes, so its figures run high next to
a PSS sum; every figure carries the file it came from so nobody compares the two blindly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

# v1 reports "no limit" as PAGE_COUNTER_MAX pages (9223372036854771712 with 4 KiB pages); any
# figure this large is no limit a machine can reach.
_V1_UNLIMITED = 1 << 60
_DEFAULT_ROOT = Path("/sys/fs/cgroup")


@dataclass
class CgroupMemory:
    """One reading of a cgroup's memory files; `sources` names the file behind each field."""

    version: Literal["v1", "v2"]
    path: str
    current: int | None
    peak: int | None
    limit: int | None
    high: int | None
    events: dict[str, int] = field(default_factory=dict)
    pressure: dict[str, float] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    # usage less the inactive file cache (what the kernel could drop at once): v1 usage counts
    # page cache, so this, not `current`, is the figure to hold against a budget.
    working_set: int | None = None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    """An integer file, or None when it is missing, unreadable or says "max"."""
    text = _read_text(path)
    if text is None:
        return None
    text = text.strip()
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def parse_keyed(text: str) -> dict[str, int]:
    """`key value` lines (memory.events, memory.oom_control) as a dict."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        with contextlib.suppress(ValueError):
            out[key] = int(value)
    return out


def parse_pressure(text: str) -> dict[str, float]:
    """PSI lines (`some avg10=0.00 avg60=0.00 avg300=0.00 total=0`) as `some_avg10`, ..."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        kind, *pairs = line.split()
        for pair in pairs:
            key, _, value = pair.partition("=")
            with contextlib.suppress(ValueError):
                out[f"{kind}_{key}"] = float(value)
    return out


def _parse_proc_cgroup(text: str) -> tuple[str | None, str | None]:
    """(v1 memory controller path, v2 unified path) from /proc/<pid>/cgroup contents."""
    v1: str | None = None
    v2: str | None = None
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            v2 = path
        elif "memory" in controllers.split(","):
            v1 = path
    return v1, v2


@dataclass(frozen=True)
class CgroupMount:
    """One cgroup mount from /proc/self/mountinfo: which part of the hierarchy it shows, where."""

    root: str  # the hierarchy path the mount shows (not "/" inside a cgroup namespace)
    point: Path
    fstype: str  # "cgroup" (v1) or "cgroup2"
    options: tuple[str, ...]  # super options: the v1 controllers


def parse_mountinfo(text: str) -> list[CgroupMount]:
    """The cgroup and cgroup2 mounts of a /proc/<pid>/mountinfo."""
    mounts: list[CgroupMount] = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        dash = fields.index("-")
        if dash < 5 or len(fields) < dash + 4:
            continue
        fstype = fields[dash + 1]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        # Octal escapes (\040 for a space) are how mountinfo writes awkward characters.
        point = fields[4].encode().decode("unicode_escape")
        mounts.append(CgroupMount(fields[3], Path(point), fstype,
                                  tuple(fields[dash + 3].split(","))))
    return mounts


def _on_mount(mount: CgroupMount, cgroup_path: str) -> Path:
    """The directory of `cgroup_path` (from /proc/self/cgroup) under a mount of its hierarchy.

    A container often mounts only its own subtree: the mount's root is then a prefix of our
    path, and what follows it is the way down from the mount point.
    """
    root = mount.root.rstrip("/")
    if cgroup_path == root or cgroup_path.startswith(root + "/"):
        return mount.point / cgroup_path[len(root):].lstrip("/")
    # Inside a cgroup namespace /proc/self/cgroup is relative to the namespace root, which is
    # what the mount shows.
    candidate = mount.point / cgroup_path.lstrip("/")
    return candidate if candidate.is_dir() else mount.point


def _under(root: Path, cgroup_path: str) -> Path:
    # Inside a cgroup namespace the path in /proc/self/cgroup can name a directory the mount
    # does not show; the mount's root is then our own cgroup.
    candidate = root / cgroup_path.lstrip("/")
    return candidate if candidate.is_dir() else root


class CgroupReader:
    """Reads one cgroup's memory files; `detect()` finds the cgroup this process is in."""

    def __init__(self, version: Literal["v1", "v2"], directory: Path) -> None:
        self.version: Literal["v1", "v2"] = version
        self.directory = directory

    def __repr__(self) -> str:
        return f"CgroupReader({self.version!r}, {str(self.directory)!r})"

    @classmethod
    def detect(
        cls,
        *,
        proc_self_cgroup: Path = Path("/proc/self/cgroup"),
        root: Path = _DEFAULT_ROOT,
        mountinfo: Path | None = None,
    ) -> CgroupReader | None:
        """The cgroup whose memory controller accounts for this process, or None.

        A v1 memory hierarchy wins over the unified one: on hybrid hosts (like our dev/CI
        machines) the unified hierarchy is mounted without the memory controller. Where the
        hierarchies are mounted is read from mountinfo (the host's own unless `root` points
        elsewhere, as tests do); without a usable mount the usual places under `root` are tried.
        """
        text = _read_text(proc_self_cgroup)
        if text is None:
            return None
        v1_path, v2_path = _parse_proc_cgroup(text)
        if mountinfo is None and root == _DEFAULT_ROOT:
            mountinfo = Path("/proc/self/mountinfo")
        info = _read_text(mountinfo) if mountinfo is not None else None
        if info is not None:
            found = cls._from_mounts(parse_mountinfo(info), v1_path, v2_path)
            if found is not None:
                return found
        if v1_path is not None:
            base = root / "memory"
            if base.is_dir():
                directory = _under(base, v1_path)
                if (directory / "memory.usage_in_bytes").is_file():
                    return cls("v1", directory)
        if v2_path is not None:
            for base in (root, root / "unified"):
                if not (base / "cgroup.controllers").is_file():
                    continue
                directory = _under(base, v2_path)
                if (directory / "memory.current").is_file():
                    return cls("v2", directory)
        return None

    @classmethod
    def _from_mounts(cls, mounts: list[CgroupMount], v1_path: str | None,
                     v2_path: str | None) -> CgroupReader | None:
        if v1_path is not None:
            for mount in mounts:
                if mount.fstype == "cgroup" and "memory" in mount.options:
                    directory = _on_mount(mount, v1_path)
                    if (directory / "memory.usage_in_bytes").is_file():
                        return cls("v1", directory)
        if v2_path is not None:
            for mount in mounts:
                if mount.fstype == "cgroup2":
                    directory = _on_mount(mount, v2_path)
                    if (directory / "memory.current").is_file():
                        return cls("v2", directory)
        return None

    def read(self) -> CgroupMemory:
        return self._read_v2() if self.version == "v2" else self._read_v1()

    def _read_v2(self) -> CgroupMemory:
        d = self.directory
        files = {
            "current": d / "memory.current",
            "peak": d / "memory.peak",
            "limit": d / "memory.max",
            "high": d / "memory.high",
            "events": d / "memory.events",
            "pressure": d / "memory.pressure",
        }
        events_text = _read_text(files["events"])
        pressure_text = _read_text(files["pressure"])
        current = _read_int(files["current"])
        stat = parse_keyed(_read_text(d / "memory.stat") or "")
        return CgroupMemory(
            version="v2",
            path=str(d),
            current=current,
            peak=_read_int(files["peak"]),
            limit=_read_int(files["limit"]),
            high=_read_int(files["high"]),
            events=parse_keyed(events_text) if events_text is not None else {},
            pressure=parse_pressure(pressure_text) if pressure_text is not None else {},
            sources={k: str(p) for k, p in files.items() if p.is_file()},
            working_set=_working_set(current, stat.get("inactive_file")),
        )

    def _read_v1(self) -> CgroupMemory:
        d = self.directory
        files = {
            "current": d / "memory.usage_in_bytes",
            "peak": d / "memory.max_usage_in_bytes",
            "limit": d / "memory.limit_in_bytes",
        }
        limit = _read_int(files["limit"])
        if limit is not None and limit >= _V1_UNLIMITED:
            limit = None
        events: dict[str, int] = {}
        oom_control = d / "memory.oom_control"
        oom_text = _read_text(oom_control)
        sources = {k: str(p) for k, p in files.items() if p.is_file()}
        if oom_text is not None and "oom_kill" in (parsed := parse_keyed(oom_text)):
            events["oom_kill"] = parsed["oom_kill"]
            sources["events"] = str(oom_control)
        # failcnt counts the charges that hit the limit: v2 calls the same thing events "max".
        if (failcnt := _read_int(d / "memory.failcnt")) is not None:
            events["max"] = failcnt
            sources["max"] = str(d / "memory.failcnt")
        current = _read_int(files["current"])
        stat = parse_keyed(_read_text(d / "memory.stat") or "")
        return CgroupMemory(
            version="v1",
            path=str(d),
            current=current,
            peak=_read_int(files["peak"]),
            limit=limit,
            high=None,
            events=events,
            pressure={},
            sources=sources,
            # total_*: this cgroup and its children (oven's browser cgroup sits below it).
            working_set=_working_set(current, stat.get("total_inactive_file")),
        )


def _working_set(current: int | None, inactive_file: int | None) -> int | None:
    if current is None:
        return None
    return max(0, current - (inactive_file or 0))


def mem_total_bytes(meminfo: Path = Path("/proc/meminfo")) -> int:
    """MemTotal from /proc/meminfo, in bytes."""
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no MemTotal line in {meminfo}")


def resolve_budget(
    budget_bytes: int | None, mem_total_share: float, cgroup: CgroupMemory | None, *,
    reserve: Callable[[int], int] | None = None,
) -> tuple[int, str]:
    """The budget in bytes and where it came from: setting, cgroup limit, or MemTotal share.

    `reserve(limit)` is what a cgroup limit keeps back for page cache and slack: a budget equal
    to the limit has no headroom, and on v1 the limit also counts cache.
    """
    if budget_bytes is not None:
        return budget_bytes, "memory.budget_bytes"
    if cgroup is not None:
        # memory.high throttles before memory.max kills: the lower of the two is the budget.
        limits = [(v, cgroup.sources.get(k, f"cgroup {k}")) for k, v in
                  (("high", cgroup.high), ("limit", cgroup.limit)) if v is not None]
        if limits:
            limit, source = min(limits)
            if reserve is None:
                return limit, source
            kept = reserve(limit)
            return max(limit - kept, limit // 4), f"{source} less a {kept >> 20} MB reserve"
    total = mem_total_bytes()
    return int(total * mem_total_share), f"{mem_total_share:g} x MemTotal (/proc/meminfo)"


class ChildCgroup:
    """A dedicated v2 cgroup under our own, so one command's true peak is `memory.peak`.

    Only possible where the host allows it: cgroup v2, our cgroup writable, and the memory
    controller enabled for its children (v2's "no internal processes" rule usually forbids
    enabling it while we ourselves live in that cgroup, so we only use it when it already is).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def create(cls, name: str, reader: CgroupReader | None = None) -> ChildCgroup | None:
        reader = reader if reader is not None else CgroupReader.detect()
        if reader is None or reader.version != "v2":
            return None
        parent = reader.directory
        subtree = _read_text(parent / "cgroup.subtree_control") or ""
        if "memory" not in subtree.split():
            with contextlib.suppress(OSError):
                (parent / "cgroup.subtree_control").write_text("+memory")
        directory = parent / name
        try:
            directory.mkdir()
        except OSError as exc:
            log.info("no dedicated cgroup under %s: %s", parent, exc)
            return None
        child = cls(directory)
        if not (directory / "memory.peak").is_file() or not os.access(
            directory / "cgroup.procs", os.W_OK
        ):
            child.remove()
            return None
        return child

    @property
    def procs_file(self) -> Path:
        return self.directory / "cgroup.procs"

    def peak(self) -> int | None:
        return _read_int(self.directory / "memory.peak")

    def remove(self, *, timeout_s: float = 2.0) -> None:
        """Remove the directory once its processes are reaped (the kernel lags a little)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.directory.rmdir()
                return
            except OSError as exc:
                if time.monotonic() >= deadline:
                    log.warning("could not remove cgroup %s: %s", self.directory, exc)
                    return
            time.sleep(0.05)  # no event tells us the last member has left the cgroup
