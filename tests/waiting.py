"""The one bounded wait of the suite, for state that has no event of its own to wait on."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(what: str, check: Callable[[], Any], *, timeout: float = 60,
               interval: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy and return that; fail after `timeout` s
    naming `what` and the last value seen. For an HTTP API, a log file, a process table or a
    registry: none of them offers an event to wait on."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")
        time.sleep(interval)
