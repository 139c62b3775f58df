from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import psutil
import pytest


def _live(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _carrying(token: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if token in " ".join(proc.cmdline()) and _live(proc):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _descends_from(process: psutil.Process, pids: set[int]) -> bool:
    """A child a session fixture's process started meanwhile (a Chromium that was already
    running spawns utility processes on its own schedule) is that fixture's, not the test's."""
    try:
        return any(parent.pid in pids for parent in process.parents())
    except psutil.Error:
        return False


@pytest.fixture
def token() -> Iterator[str]:
    """A unique word for this test's command lines; afterwards no live process may carry it,
    and this test process has no live child left that the test started (other suites may run
    beside us, and session fixtures such as the capture suite's Chromium are children of this
    process too, so the check is scoped to children that appeared during the test)."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    value = f"ovenmemtest{secrets.token_hex(4)}"
    yield value
    deadline = time.monotonic() + 10
    left: list[psutil.Process] = []
    while time.monotonic() < deadline:
        left = _carrying(value) + [p for p in psutil.Process().children(recursive=True)
                                   if p.pid not in before and _live(p)
                                   and not _descends_from(p, before)]
        if not left:
            return
        time.sleep(0.1)  # processes die asynchronously; poll with a bound
    names = {p.pid: " ".join(p.cmdline())[:80] for p in left if _live(p)}
    raise AssertionError(f"processes left behind: {names}")
