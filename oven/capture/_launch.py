"""Starting Playwright's driver and one Chromium, and finding and placing their processes.

The Browser handle (_browser) is what the pool works with; this is how one comes to exist:
Chromium's command line (no shared workers, a V8 heap cap when pages are held by polling),
the driver's V8 flags, the owner marker every process carries, the processes found by that
marker, their process group, the throwaway profile, and their move into the browser's cgroup
before any page opens.
A launch that fails half-way kills whatever it started.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import psutil
from playwright.async_api import Browser as PWBrowser
from playwright.async_api import Playwright, async_playwright

from oven.capture import _processes
from oven.capture._settings import BrowserSettings
from oven.memory import RendererWatch


@dataclass
class ChromiumProcesses:
    """What of one launch runs as OS processes; safe to use from any thread."""

    marker: str  # carried on Chromium's command line: finds its processes, orphans included
    browser: psutil.Process | None = None
    driver: psutil.Process | None = None  # Playwright's node driver, Chromium's parent
    owns_group: bool = False  # Chromium leads its own process group
    profile_dir: Path | None = None  # the launch's throwaway profile, removed on stop

    @property
    def browser_pid(self) -> int | None:
        return self.browser.pid if self.browser is not None else None

    def snapshot(self) -> list[psutil.Process]:
        return _processes.snapshot(self.browser_pid)

    def kill(self, tree: list[psutil.Process]) -> None:
        # Chromium runs as its own process-group leader (Playwright spawns it detached), so one
        # killpg also reaches renderers forked after the snapshot; the marker catches the rest.
        _processes.kill_tree(tree, self.browser if self.owns_group else None)
        kill_marked(self.marker)

    def kill_all(self, profile_dir: Path | None, *, timeout_s: float) -> None:
        """SIGKILL Chromium's tree and the driver, then (bounded) remove the profile once
        nothing writes to it any more. Touches no event loop."""
        tree = self.snapshot()
        self.kill(tree)
        self.kill_driver()
        if not _processes.wait_gone(tree, timeout_s=timeout_s):
            _processes.remove_profile(profile_dir)

    def kill_driver(self) -> None:
        if self.driver is not None:
            _processes.kill_tree([self.driver], None)

    def group(self) -> list[psutil.Process]:
        """Live members of Chromium's process group (none unless it leads its own)."""
        if not self.owns_group or self.browser is None:
            return []
        return _processes.group_members(self.browser.pid)

    def leftover_pids(self) -> list[int]:
        """Live processes still in Chromium's process group or carrying the marker."""
        pids = set(_processes.marked_pids(self.marker))
        pids.update(p.pid for p in self.group())
        return sorted(pids)


async def start_chromium(settings: BrowserSettings, marker: str,
                         watch: RendererWatch | None) -> tuple[Playwright, PWBrowser]:
    """Start the driver and Chromium; on failure neither is left running."""
    args = _without_shared_workers(settings.args)
    if watch is not None and watch.plan.mechanism == "poll":
        # Without a cgroup the poller sees a page's growth only at its next tick; V8's own
        # cap stops the JS heap part of it at once.
        args = _with_js_flag(args, f"--max-old-space-size={watch.plan.page_ceiling >> 20}")
    _set_driver_node_options(settings.driver_node_options)
    playwright = await async_playwright().start()
    try:
        pw_browser = await playwright.chromium.launch(
            executable_path=settings.executable_path,
            args=[*args, _processes.marker_flag(marker)],
            headless=True,
            timeout=settings.launch_timeout_s * 1000,
        )
    except BaseException:
        async with asyncio.timeout(settings.close_timeout_s):
            await playwright.stop()
        kill_marked(marker)
        raise
    return playwright, pw_browser


async def find_processes(found: ChromiumProcesses, watch: RendererWatch | None) -> None:
    """Fill in Chromium's processes, found by their marker; with a `watch`, hand them to it
    (moved into the browser's cgroup when it has one) before any page opens. Filled as they are
    found, so a failure half-way still leaves the caller what it must kill."""
    found.browser = _processes.find_marked_child(found.marker)
    found.profile_dir = _processes.profile_dir(found.browser)
    if found.browser is not None:
        found.owns_group = _processes.owns_group(found.browser)
        # Playwright's node driver spawned Chromium (the Debian wrapper execs).
        found.driver = found.browser.parent()
        if watch is not None:
            await asyncio.to_thread(watch.adopt, found.browser.pid)


def kill_marked(marker: str) -> None:
    for pid in _processes.marked_pids(marker):
        try:
            proc = psutil.Process(pid)
        except psutil.NoSuchProcess:
            continue
        _processes.kill_tree(
            _processes.snapshot(pid), proc if _processes.owns_group(proc) else None
        )


# NODE_OPTIONS as oven found it, before it added the driver's own.
_ENV_NODE_OPTIONS = os.environ.get("NODE_OPTIONS", "")


def _set_driver_node_options(options: str) -> None:
    """Give Playwright's next driver `options` (ahead of the environment's own NODE_OPTIONS,
    whose flags then win).

    Playwright starts its driver with a copy of os.environ and takes no environment of its
    own, so the variable is set for the process; the other programs oven runs (ffmpeg,
    webpmux) ignore it.
    """
    merged = " ".join(part for part in (options, _ENV_NODE_OPTIONS) if part)
    if merged:
        os.environ["NODE_OPTIONS"] = merged
    else:
        os.environ.pop("NODE_OPTIONS", None)


def _without_shared_workers(args: list[str]) -> list[str]:
    """`args` with SharedWorker among the disabled Blink features (merged into an existing
    --disable-blink-features switch: Chromium keeps only the last one).

    Playwright detaches from shared workers, so no route or CDP session of ours would see their
    requests (measured on Chromium 156: a raw-URL page's shared worker reached a private address
    through every hook), and a capture has no use for them.
    """
    flag = "--disable-blink-features="
    if not any(a.startswith(flag) for a in args):
        return [*args, flag + "SharedWorker"]
    return [f"{a},SharedWorker" if a.startswith(flag) else a for a in args]


def _with_js_flag(args: list[str], flag: str) -> list[str]:
    """`args` with a V8 flag added to --js-flags (Chromium keeps only the last such switch)."""
    prefix = "--js-flags="
    if not any(a.startswith(prefix) for a in args):
        return [*args, prefix + flag]
    return [f"{a} {flag}" if a.startswith(prefix) else a for a in args]
