"""Relaunching the pool's browser after a recycle, with backoff, until it serves or gives up.

When a recycle cannot launch a new Chromium, the pool neither gives up silently nor lets work
wait for a browser that is not coming:
- it keeps relaunching, waiting an exponential backoff with jitter between attempts
  (`relaunch_backoff_initial_s` doubling to `relaunch_backoff_max_s`, ±20 %);
- the whole time, `browser` is posted on the ReadinessBoard with the last launch error
  ("relaunch failing (attempt 3, next in 2.0 s): ..."), so /ready answers 503 and no capture
  is claimed;
- every Capture is answered at once with BrowserGone("no browser: relaunch failing: ..."), a
  transient error that is oven's trouble, never the piece's;
- after `relaunch_give_up_s` of failed attempts the pool crashes into its supervisor. The
  restarted pool launches once in start_async; a failed start counts against the supervisor's
  restart intensity, so a host that cannot run Chromium any more ends in escalation (oven
  exits non-zero, systemd restarts it) instead of a pool that answers pings forever.
The first launch, at boot, is not retried: a service that cannot start its browser fails to
start, naming the launch error.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from oven.actors.browser_pool._messages import BrowserRelaunchFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RelaunchPolicy:
    backoff_initial_s: float
    backoff_max_s: float
    give_up_s: float


async def relaunch(launch: Callable[[], Awaitable[None]], policy: RelaunchPolicy, *,
                   failed: Callable[[int, str, float | None], Awaitable[None]]) -> None:
    """`launch()` until it succeeds; after each failure `failed(attempt, error, delay)` is
    awaited (delay None once giving up, then BrowserRelaunchFailed is raised)."""
    first_failure: float | None = None
    attempt = 0
    while True:
        attempt += 1
        try:
            await launch()
        except Exception as exc:
            error = launch_error(exc)
        else:
            if attempt > 1:
                log.warning("browser relaunched at attempt %d", attempt)
            return
        now = time.monotonic()
        if first_failure is None:
            first_failure = now
        if now - first_failure >= policy.give_up_s:
            await failed(attempt, error, None)
            # The owned task's death crashes the actor into its supervisor (see above).
            raise BrowserRelaunchFailed(
                f"browser could not be relaunched for {now - first_failure:.0f} s "
                f"({attempt} attempts): {error}")
        delay = min(policy.backoff_max_s, policy.backoff_initial_s * 2 ** (attempt - 1))
        delay *= random.uniform(0.8, 1.2)
        await failed(attempt, error, delay)
        log.error("browser relaunch attempt %d failed; next in %.1f s: %s", attempt, delay,
                  error)
        await asyncio.sleep(delay)


def launch_error(exc: BaseException, limit: int = 300) -> str:
    """One line saying why a launch failed: Playwright's first line plus Chromium's last stderr
    line (the part that says why), bounded for the board and error messages."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    summary = lines[0] if lines else type(exc).__name__
    said = [line.split("[err]", 1)[1].strip() for line in lines if "[err]" in line]
    if said and said[-1]:
        summary = f"{summary} (chromium: {said[-1]})"
    return summary if len(summary) <= limit else summary[: limit - 1] + "…"


def reason_label(reason: str) -> str:
    """A small, fixed label set for the metric; the full reason goes to the log."""
    for needle, label in (
        ("restart_after", "restart_after"),
        ("disconnected", "crash"),
        ("crash", "crash"),
        ("health", "health"),
        ("hung", "hung_page"),
        ("memory", "memory"),
    ):
        if needle in reason:
            return label
    return "other"
