"""When a page is ready to be captured: the rules, and the wait that applies them.

A request names its rule, or the default applies:
- `expression` (request `wait_for`): a JS expression becomes true;
- `selector` (request `wait_for_selector`): an element matching it exists;
- default: a page that *declares* the contract (`[browser] ready_declared_expression`, by default
  `'ovenReady' in window`: it set `window.ovenReady`, false at first) is waited for until the
  contract (`ready_expression`) holds, and an uncaught error fails it at once (`contract`); a
  page that never declares it is ready once it has loaded and painted `painted_frames`
  animation frames (`painted`). Most pages on the web and most sketches never set the flag:
  they no longer pay the whole `ready_timeout_s` (measured 10 s of an 11.4 s grab before).
Past `ready_timeout_s` the capture goes on anyway (`timeout`). `delay_ms` then waits longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TYPE_CHECKING, Literal, Protocol

from playwright.async_api import Error as PlaywrightError

from oven.capture._errors import NotAsAsked, PieceError, RendererCrashed
from oven.capture._watch import PageWatch, is_gone

if TYPE_CHECKING:
    from oven.capture._browser import Slot

ReadyRule = Literal["contract", "expression", "selector", "painted", "timeout"]

# How often the ready probe runs on the real clock (each probe is one evaluate).
READY_POLL_S = 0.02

# Counts the animation frames a page paints once loaded, up to `limit`, then stops asking for
# frames (a static page costs nothing afterwards). Installed after the virtual clock's shim, so
# on that clock it counts the clock's frames: the probe advances one per poll.
PAINTED_JS = r"""
(() => {
  if (window.__ovenPainted !== undefined) return;
  let painted = 0;
  const raf = window.requestAnimationFrame.bind(window);
  const tick = () => {
    if (document.readyState === "complete") painted++;
    if (painted < %(limit)d) raf(tick);
  };
  raf(tick);
  Object.defineProperty(window, "__ovenPainted", { get: () => painted });
})();
"""


class ReadyAsk(Protocol):
    url: str
    clock: Literal["real", "virtual"]
    fps: float
    wait_for: str | None
    wait_for_selector: str | None
    delay_ms: int
    scripts: list[str]


def painted_script(frames: int) -> str:
    return PAINTED_JS % {"limit": frames}


def probe_for(ask: ReadyAsk, *, contract: str, declared: str, painted_frames: int,
              rule: Literal["auto", "contract"]) -> str:
    """One JS expression that answers which rule holds now: a rule's name, "" (not yet), or
    "declared" (the page follows the contract and has not met it: errors fail it at once)."""
    if ask.wait_for is not None:
        return f'(!!({ask.wait_for}) ? "expression" : "")'
    if ask.wait_for_selector is not None:
        selector = json.dumps(ask.wait_for_selector)
        # A selector the browser cannot parse throws the same way every time: say so at once.
        return (f'(() => {{ try {{ return document.querySelector({selector}) ? "selector" : ""; }}'
                f' catch (e) {{ return "bad-selector"; }} }})()')
    if rule == "contract":
        return f'(!!({contract}) ? "contract" : "declared")'
    return (f'(!!({contract}) ? "contract" : !!({declared}) ? "declared" : '
            f'(window.__ovenPainted | 0) >= {painted_frames} ? "painted" : "")')


async def wait_ready(slot: Slot, watch: PageWatch, ask: ReadyAsk, *, probe: str,
                     timeout_s: float) -> tuple[ReadyRule, str | None]:
    """Probe until a rule holds or the timeout passes; (the rule, the probe's last error).

    On the virtual clock each probe first advances page time by one frame, so pre-ready
    animation frames run (deterministically) and frame 0 follows the ready frame. An uncaught
    error fails a page that declared the contract at once, unless the request injected scripts;
    any other page's errors are only reported (a third-party script's error must not fail a
    capture that would have been fine).
    """
    if ask.clock == "virtual":
        frame_ms = 1000.0 / ask.fps
        expression = f"(window.__ovenClock.advance({frame_ms!r}), {probe})"
        poll_s = max(0.01, 1.0 / ask.fps)
    else:
        expression, poll_s = probe, READY_POLL_S
    deadline = time.monotonic() + timeout_s
    probe_error: str | None = None
    answer = ""
    # A client's injected script may throw: that must never fail (and count against) a piece.
    strict = not ask.scripts
    while True:
        if strict and watch.errors and answer == "declared":
            raise PieceError(f"piece threw: {watch.errors[0]}")
        if watch.crashed:
            raise RendererCrashed(f"renderer crashed while loading {ask.url}")
        remaining = deadline - time.monotonic()
        try:
            # Bounded: a piece spinning its main thread would hold evaluate() forever.
            async with asyncio.timeout(max(remaining, 0.0) + 1.0):
                answer = str(await slot.page.evaluate(expression) or "")
            probe_error = None
        except TimeoutError:
            answer = ""
        except PlaywrightError as exc:
            if is_gone(slot, watch, exc):
                raise
            # e.g. the expression throws, or the piece navigated and the context was swapped.
            answer, probe_error = "", exc.message.splitlines()[0]
        if answer == "bad-selector":
            raise NotAsAsked(f"wait_for_selector: {ask.wait_for_selector!r} is not a valid "
                             "CSS selector")
        if answer in ("contract", "expression", "selector", "painted"):
            if strict and watch.errors and answer == "contract":
                raise PieceError(f"piece threw: {watch.errors[0]}")
            return answer, None  # type: ignore[return-value]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "timeout", probe_error
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(poll_s, remaining)):
                await watch.event.wait()
        watch.event.clear()


async def settle(slot: Slot, ask: ReadyAsk) -> None:
    """The request's `delay_ms` after ready: real time, or that much page time in frame steps
    on the virtual clock (so animations move on exactly as they would have)."""
    if ask.delay_ms <= 0:
        return
    if ask.clock == "real":
        await asyncio.sleep(ask.delay_ms / 1000)
        return
    frame_ms = 1000.0 / ask.fps
    steps = max(1, round(ask.delay_ms / frame_ms))
    await slot.page.evaluate(f"(() => {{ for (let i = 0; i < {steps}; i++) "
                             f"window.__ovenClock.advance({frame_ms!r}); }})()")
