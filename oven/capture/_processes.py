"""Chromium's OS processes: the owner marker, the tree by component, kills and the orphan sweep.

Every Chromium oven starts carries `--oven-owner=<oven pid>-<random>` on its command line
(Chromium ignores unknown switches). Only the main browser process carries it; its children
(zygotes, renderers, gpu, utility) share its process group, because Playwright starts Chromium
detached: the main process is its own session and process-group leader (checked with os.getpgid).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import time
from collections.abc import Iterable
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

MARKER_PREFIX = "--oven-owner="

COMPONENTS = ("driver", "browser", "renderer", "gpu", "utility", "other")
_TYPE_TO_COMPONENT = {"renderer": "renderer", "gpu-process": "gpu", "utility": "utility"}


def new_marker() -> str:
    """A marker naming this process as the owner: `<pid>-<random>`."""
    return f"{os.getpid()}-{secrets.token_hex(4)}"


def marker_flag(marker: str) -> str:
    return MARKER_PREFIX + marker


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return list(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return []


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def marked_pids(marker: str, *, prefix: str = MARKER_PREFIX) -> list[int]:
    """Live processes whose command line carries exactly this marker (after `prefix`, as
    sweep_orphans takes it)."""
    flag = prefix + marker
    return [p.pid for p in psutil.process_iter() if flag in _cmdline(p) and _alive(p)]


def find_marked_child(marker: str) -> psutil.Process | None:
    """The descendant of this process carrying the marker (the main Chromium process)."""
    flag = marker_flag(marker)
    for proc in psutil.Process().children(recursive=True):
        if flag in _cmdline(proc):
            return proc
    return None


def _switch(cmdline: list[str], name: str) -> str | None:
    prefix = f"--{name}="
    for arg in cmdline:
        if arg.startswith(prefix):
            return arg[len(prefix):]
    return None


# Playwright refuses --user-data-dir in launch args and gives every launch a fresh profile under
# the driver's temp dir; it removes it on a graceful close only. Anything else named like it is
# never ours to delete.
PROFILE_PREFIX = "playwright_chromiumdev_profile-"


def profile_dir(proc: psutil.Process | None) -> Path | None:
    """The throwaway profile directory a Chromium main process runs with."""
    value = _switch(_cmdline(proc), "user-data-dir") if proc is not None else None
    if value is None or not Path(value).name.startswith(PROFILE_PREFIX):
        return None
    return Path(value)


def remove_profile(path: Path | None) -> None:
    """Delete a throwaway profile once its Chromium is gone (cookies, caches, storage)."""
    if path is None or not path.name.startswith(PROFILE_PREFIX):
        return
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        log.warning("could not remove the chromium profile %s", path)


def process_tree(browser_pid: int | None, driver_pid: int | None) -> dict[str, list[int]]:
    """Pids by component, classified by Chromium's `--type=` switch."""
    tree: dict[str, list[int]] = {name: [] for name in COMPONENTS}
    if driver_pid is not None and psutil.pid_exists(driver_pid):
        tree["driver"].append(driver_pid)
    if browser_pid is None:
        return tree
    try:
        main = psutil.Process(browser_pid)
        children = main.children(recursive=True)
    except psutil.NoSuchProcess:
        return tree
    if _alive(main):
        tree["browser"].append(browser_pid)
    for child in children:
        if not _alive(child):
            continue
        kind = _switch(_cmdline(child), "type") or ""
        tree[_TYPE_TO_COMPONENT.get(kind, "other")].append(child.pid)
    return tree


def snapshot(browser_pid: int | None) -> list[psutil.Process]:
    """The main process and its descendants, as psutil handles that survive pid reuse."""
    if browser_pid is None:
        return []
    try:
        main = psutil.Process(browser_pid)
        return [main, *main.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def owns_group(leader: psutil.Process) -> bool:
    """True when `leader` leads its own process group (Playwright starts Chromium detached)."""
    try:
        return os.getpgid(leader.pid) == leader.pid
    except ProcessLookupError:
        return False


def _group_is_still_ours(leader: psutil.Process) -> bool:
    # Linux keeps a pid out of reuse while a group still carries it as pgid, so the group is
    # ours unless a *different* process (another create time) now holds the leader's pid.
    try:
        current = psutil.Process(leader.pid)
    except psutil.NoSuchProcess:
        return True
    return current.create_time() == leader.create_time()


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes in a process group."""
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and _alive(proc):
                members.append(proc)
        except (ProcessLookupError, PermissionError):
            continue
    return members


def kill_tree(procs: Iterable[psutil.Process], group_leader: psutil.Process | None) -> None:
    """SIGKILL a Chromium tree: its whole process group, then any straggler that left it."""
    procs = list(procs)
    # The group kill reaches renderers forked after the snapshot and children re-parented
    # after the main process died; it is skipped when the leader's pid was reused.
    if group_leader is not None and _group_is_still_ours(group_leader):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group_leader.pid, signal.SIGKILL)
    for proc in procs:
        if _alive(proc):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                proc.kill()


def wait_gone(procs: Iterable[psutil.Process], *, timeout_s: float) -> list[psutil.Process]:
    """Wait (bounded) until the processes are gone or zombies; return those still alive."""
    deadline = time.monotonic() + timeout_s
    left = [p for p in procs if _alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = [p for p in left if _alive(p)]
    return left


def sweep_orphans(marker_prefix: str = MARKER_PREFIX) -> list[int]:
    """Kill marked Chromium trees whose owning oven process is dead; return the main pids killed.

    Run at boot: a crashed or SIGKILLed oven leaves its Chromium running (it is detached in its
    own session, so it outlives its parents).
    """
    killed: list[int] = []
    me = os.getpid()
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        value = next((a[len(marker_prefix):] for a in _cmdline(proc)
                      if a.startswith(marker_prefix)), None)
        if value is None:
            continue
        try:
            owner = int(value.split("-", 1)[0])
        except ValueError:
            continue
        if owner == me or _owner_alive(owner):
            continue
        leads_group = owns_group(proc)
        profile = profile_dir(proc)
        tree = snapshot(proc.pid)
        kill_tree(tree, proc if leads_group else None)
        if leads_group:
            tree += group_members(proc.pid)
        left = wait_gone(tree, timeout_s=5.0)
        if left:
            log.error("orphan chromium processes survived SIGKILL: %s", [p.pid for p in left])
        else:
            remove_profile(profile)
        log.warning("killed orphan chromium pid=%d (owner %d is gone)", proc.pid, owner)
        killed.append(proc.pid)
    return killed


def _owner_alive(pid: int) -> bool:
    try:
        return _alive(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False
