"""One capture: navigate a slot's page to a piece, wait for its ready contract, write frames."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError
from pydantic import BaseModel, ConfigDict, Field

from oven.capture._browser import Browser, Slot
from oven.capture._clock import VIRTUAL_CLOCK_JS
from oven.capture._errors import BrowserGone, MemoryCeilingExceeded, PieceError, RendererCrashed
from oven.capture._guard import GuardMode, RequestGuard

log = logging.getLogger(__name__)

# How often the ready expression is probed on the real clock (each probe is one evaluate).
READY_POLL_S = 0.02
# How long a failed page call waits for the page's crash event before it is taken as it is.
CRASH_EVENT_GRACE_S = 0.5
_GONE_HINTS = ("crashed", "Target closed", "has been closed", "Browser closed", "Session closed",
               "Connection closed", "disconnected")
_NET_ERROR = re.compile(r"net::ERR_[A-Z_]+")


# The hardest bounds a capture takes. The grab schema and the configurable limits are built on
# these same numbers, so every request the edge admits is one capture can run.
MAX_SIDE = 4096
MAX_DENSITY = 4.0
MAX_FRAMES = 3600
MIN_FPS = 1.0
MAX_FPS = 60.0


class CaptureRequest(BaseModel):
    """What to capture: a page, its viewport, and a still (frames=1) or a frame sequence."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, description="Piece page URL.")
    width: int = Field(default=640, ge=1, le=MAX_SIDE, description="Viewport width, CSS px.")
    height: int = Field(default=360, ge=1, le=MAX_SIDE, description="Viewport height, CSS px.")
    density: float = Field(default=1.0, ge=1.0, le=MAX_DENSITY,
                           description="Device pixels per CSS px.")
    frames: int = Field(default=1, ge=1, le=MAX_FRAMES, description="1 for a still.")
    fps: float = Field(default=20.0, ge=MIN_FPS, le=MAX_FPS, description="Frames per second.")
    clock: Literal["real", "virtual"] = Field(
        default="real", description="real: sample the page as it runs; virtual: exact steps."
    )
    ready_expression: str | None = Field(default=None, description="Overrides the setting.")
    ready_timeout_s: float | None = Field(default=None, ge=0.0, le=300.0)
    frame_format: Literal["png", "jpeg"] | None = Field(default=None)
    guard: GuardMode = Field(
        default="off",
        description="Check every request the page makes (raw URLs from clients): 'public' "
        "blocks private/loopback/link-local addresses and odd schemes, 'schemes' only odd "
        "schemes; 'off' for bundled pieces and the operator's own url_template.",
    )


@dataclass
class CaptureResult:
    frames: list[Path]
    frame_format: str
    pixel_width: int
    pixel_height: int
    ready: Literal["ok", "timeout"]
    frozen: bool
    timings: dict[str, float] = field(default_factory=dict)
    page_errors: list[str] = field(default_factory=list)
    blocked_requests: list[str] = field(default_factory=list)  # "reason url", by the guard


class _PageWatch:
    """Collects uncaught page errors and crash notices while a job runs."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.crashed = False
        self.crashed_at = 0.0  # time.monotonic() of the crash event
        self.event = asyncio.Event()
        page.on("pageerror", self._on_error)
        page.on("crash", self._on_crash)

    def _on_error(self, error: PlaywrightError) -> None:
        self.errors.append(error.message or error.name or "unknown error")
        self.event.set()

    def _on_crash(self, _: Page) -> None:
        self.crashed = True
        self.crashed_at = time.monotonic()
        self.event.set()

    def detach(self) -> None:
        self.page.remove_listener("pageerror", self._on_error)
        self.page.remove_listener("crash", self._on_crash)


StageHook = Callable[[str], None]


def _no_stage(stage: str) -> None:
    return None


async def capture(
    target: Slot | Browser,
    request: CaptureRequest,
    out_dir: Path,
    *,
    on_stage: StageHook = _no_stage,
) -> CaptureResult:
    """Capture `request` into `out_dir` as frame-00000.png (or .jpg), frame-00001...

    Raises PieceError (permanent: the piece's fault) or BrowserGone (transient: retry).
    Given a Browser, it holds one of its page slots for the job. `on_stage` is called with
    "ready" and "capture" as those steps begin (navigation is the first step).
    """
    if isinstance(target, Browser):
        async with target.page_slot() as slot:
            return await _capture(slot, request, out_dir, on_stage)
    return await _capture(target, request, out_dir, on_stage)


async def _capture(
    slot: Slot, request: CaptureRequest, out_dir: Path, on_stage: StageHook
) -> CaptureResult:
    watch: _PageWatch | None = None
    try:
        await slot.prepare(request.density)
        watch = _PageWatch(slot.page)
        return await _run(slot, watch, request, out_dir, on_stage)
    except RendererCrashed as exc:
        assert watch is not None
        raise await _renderer_death(slot, watch, str(exc)) from exc
    except PlaywrightError as exc:
        if watch is not None and not watch.crashed and slot.browser.is_connected:
            # A call into a page whose renderer was just killed can fail ("Unable to capture
            # screenshot") before the crash event arrives: give the event a moment.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CRASH_EVENT_GRACE_S):
                    await _crash_seen(watch)
        if watch is not None and watch.crashed and slot.browser.is_connected:
            raise await _renderer_death(
                slot, watch, f"the piece's renderer crashed during capture of {request.url}: "
                             f"{_reason(exc)}") from exc
        if _is_gone(slot, watch, exc):
            raise await slot.browser.lost(
                slot, f"browser gone during capture of {request.url}: {_reason(exc)}") from exc
        raise
    except BrowserGone as exc:
        raise await slot.browser.lost(slot, str(exc)) from exc
    finally:
        if watch is not None:
            watch.detach()


async def _crash_seen(watch: _PageWatch) -> None:
    while not watch.crashed:
        watch.event.clear()
        await watch.event.wait()


async def _renderer_death(slot: Slot, watch: _PageWatch, detail: str) -> Exception:
    """The error for a page whose renderer died: over its memory ceiling (permanent, the
    piece's fault, never retried) or any other crash (retried, counted toward freezing)."""
    verdict = await slot.browser.renderer_verdict(slot, at=watch.crashed_at or time.monotonic())
    if verdict.kind == "memory":
        log.info("%s: %s", verdict.message, detail)
        return MemoryCeilingExceeded(verdict.message)
    return RendererCrashed(f"{detail} ({verdict.message})")


async def _run(
    slot: Slot, watch: _PageWatch, request: CaptureRequest, out_dir: Path, on_stage: StageHook
) -> CaptureResult:
    settings = slot.browser.settings
    page = slot.page
    timings: dict[str, float] = {}
    await page.set_viewport_size({"width": request.width, "height": request.height})
    # Device metrics emulation is per CDP session: without the same override on the session
    # that captures, Page.captureScreenshot returns CSS-pixel-sized frames at any density.
    # The values equal the context's, so whichever session Chromium applies last agrees.
    await slot.cdp.send("Emulation.setDeviceMetricsOverride", {
        "width": request.width, "height": request.height,
        "deviceScaleFactor": request.density, "mobile": False,
    })
    if request.clock == "virtual":
        # Through CDP, not page.add_init_script: the slot's tab serves later jobs too, so the
        # shim must be removable (Slot.reset removes it).
        added = await slot.cdp.send("Page.addScriptToEvaluateOnNewDocument",
                                    {"source": VIRTUAL_CLOCK_JS})
        slot.init_scripts.append(added["identifier"])

    guard: RequestGuard | None = None
    if request.guard != "off":
        guard = RequestGuard(request.guard)
        await slot.guard_requests(guard)

    started = time.perf_counter()
    try:
        await _navigate(slot, watch, request.url, settings.navigation_timeout_s)
    except PieceError as exc:
        if guard is not None and guard.blocked:
            raise PieceError(f"{exc}; oven blocked {guard.blocked[0]}") from exc
        raise
    timings["navigate"] = time.perf_counter() - started

    on_stage("ready")
    started = time.perf_counter()
    ready, probe_error = await _wait_ready(
        slot, watch, request,
        expression=request.ready_expression or settings.ready_expression,
        timeout_s=(settings.ready_timeout_s if request.ready_timeout_s is None
                   else request.ready_timeout_s),
    )
    timings["ready"] = time.perf_counter() - started

    frame_format = request.frame_format or settings.frame_format
    on_stage("capture")
    started = time.perf_counter()
    frames, digests, size = await _grab_frames(
        slot, request, out_dir, frame_format, settings.jpeg_quality
    )
    timings["capture"] = time.perf_counter() - started

    errors = list(watch.errors)
    if probe_error is not None:
        errors.append(f"ready expression failed: {probe_error}")
    return CaptureResult(
        frames=frames,
        frame_format=frame_format,
        pixel_width=size[0],
        pixel_height=size[1],
        ready=ready,
        frozen=len(digests) > 1 and len(set(digests)) == 1,
        timings=timings,
        page_errors=errors,
        blocked_requests=guard.summary() if guard is not None else [],
    )


async def _navigate(slot: Slot, watch: _PageWatch, url: str, timeout_s: float) -> None:
    try:
        # domcontentloaded, not load: readiness is the piece's own contract, and a slow
        # sub-resource must not turn into a navigation failure.
        response = await slot.page.goto(
            url, wait_until="domcontentloaded", timeout=timeout_s * 1000
        )
    except PlaywrightTimeoutError as exc:
        raise PieceError(f"piece page did not load within {timeout_s:g} s: {url}") from exc
    except PlaywrightError as exc:
        if _is_gone(slot, watch, exc):
            raise
        found = _NET_ERROR.search(exc.message)
        reason = found.group(0) if found else exc.message.splitlines()[0]
        raise PieceError(f"piece page failed to load ({reason}): {url}") from exc
    if response is not None and response.status >= 400:
        raise PieceError(f"piece page answered {response.status}: {url}")


async def _wait_ready(
    slot: Slot, watch: _PageWatch, request: CaptureRequest, *, expression: str, timeout_s: float
) -> tuple[Literal["ok", "timeout"], str | None]:
    """Probe the ready expression until true or timeout; an uncaught error fails at once.

    On the virtual clock each probe first advances page time by one frame, so pre-ready
    animation frames run (deterministically) and frame 0 follows the ready frame.
    """
    if request.clock == "virtual":
        frame_ms = 1000.0 / request.fps
        probe = f"(window.__ovenClock.advance({frame_ms!r}), !!({expression}))"
        poll_s = max(0.01, 1.0 / request.fps)
    else:
        probe, poll_s = f"!!({expression})", READY_POLL_S
    deadline = time.monotonic() + timeout_s
    probe_error: str | None = None
    while True:
        if watch.errors:
            raise PieceError(f"piece threw: {watch.errors[0]}")
        if watch.crashed:
            raise RendererCrashed(f"renderer crashed while loading {request.url}")
        remaining = deadline - time.monotonic()
        try:
            # Bounded: a piece spinning its main thread would hold evaluate() forever.
            async with asyncio.timeout(max(remaining, 0.0) + 1.0):
                ok = await slot.page.evaluate(probe)
            probe_error = None
        except TimeoutError:
            ok = False
        except PlaywrightError as exc:
            if _is_gone(slot, watch, exc):
                raise
            # e.g. the expression throws, or the piece navigated and the context was swapped.
            ok, probe_error = False, exc.message.splitlines()[0]
        if ok:
            return "ok", None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "timeout", probe_error
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(poll_s, remaining)):
                await watch.event.wait()


async def _grab_frames(
    slot: Slot, request: CaptureRequest, out_dir: Path, frame_format: str, jpeg_quality: int
) -> tuple[list[Path], list[bytes], tuple[int, int]]:
    """CDP Page.captureScreenshot, paced at 1/fps on the real clock.

    Playwright's page.screenshot adds work (and ~2x the time on slower hosts); the CDP screencast
    gives frames only when the compositor produces one (none for a still) and at its own rate.
    """
    # A still's PNG is kept as the result itself (the encoder takes it as it is): compressed
    # for keeping it costs Chromium ~5 ms more and halves the bytes. Animation frames are read
    # once by ffmpeg and deleted, so they are compressed for speed.
    keep = request.frames == 1 and frame_format == "png"
    params: dict[str, Any] = {"format": frame_format, "optimizeForSpeed": not keep}
    if frame_format == "jpeg":
        params["quality"] = jpeg_quality
    suffix = "png" if frame_format == "png" else "jpg"
    frame_s = 1.0 / request.fps
    advance = f"window.__ovenClock.advance({1000.0 / request.fps!r})"
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    digests: list[bytes] = []
    size = (0, 0)
    t0 = time.monotonic()
    for k in range(request.frames):
        if request.clock == "virtual":
            await slot.page.evaluate(advance)
        elif k:
            await asyncio.sleep(max(0.0, t0 + k * frame_s - time.monotonic()))
        shot = await slot.cdp.send("Page.captureScreenshot", params)
        data = base64.b64decode(shot["data"])
        if k == 0:
            size = Image.open(io.BytesIO(data)).size  # reads the header only
        path = out_dir / f"frame-{k:05d}.{suffix}"
        # A ~100 KB write on the loop costs less than a hop to a thread.
        path.write_bytes(data)
        paths.append(path)
        digests.append(hashlib.blake2b(data, digest_size=16).digest())
    return paths, digests, size


def _is_gone(slot: Slot, watch: _PageWatch | None, exc: BaseException) -> bool:
    if (watch is not None and watch.crashed) or not slot.browser.is_connected:
        return True
    if not slot.ready:
        return True
    text = str(exc)
    return any(hint in text for hint in _GONE_HINTS)


def _reason(exc: PlaywrightError) -> str:
    """The first line of a Playwright error: what went wrong. The rest is its "Browser logs" or
    "Call log" (Chromium's command line and stderr), kilobytes that are no client's business."""
    return exc.message.splitlines()[0] if exc.message else repr(exc)
