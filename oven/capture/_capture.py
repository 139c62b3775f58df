"""One capture: navigate a slot's page to a piece, wait for its ready contract, write frames."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from PIL import Image
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError
from pydantic import BaseModel, ConfigDict, Field, model_validator

from oven.capture._browser import Browser, Slot
from oven.capture._clock import PACED_FRAMES_JS, VIRTUAL_CLOCK_JS
from oven.capture._errors import (
    BrowserGone,
    MemoryCeilingExceeded,
    NotAsAsked,
    PieceError,
    RendererCrashed,
)
from oven.capture._frames import DEFAULT_WEBP_QUALITY, take_frames, whole_pictures
from oven.capture._guard import GuardMode, RequestGuard
from oven.capture._options import element_clip, emulate, inject
from oven.capture._quality import Flag, flags_of
from oven.capture._ready import ReadyRule, painted_script, probe_for, settle, wait_ready
from oven.capture._watch import PageWatch, first_line, is_gone

log = logging.getLogger(__name__)

# How long a failed page call waits for the page's crash event before it is taken as it is.
CRASH_EVENT_GRACE_S = 0.5
_NET_ERROR = re.compile(r"net::ERR_[A-Z_]+")


# The hardest bounds a capture takes. The grab schema and the configurable limits are built on
# these same numbers, so every request the edge admits is one capture can run.
MAX_SIDE = 4096
MAX_DENSITY = 4.0
MAX_FRAMES = 3600
MIN_FPS = 1.0
MAX_FPS = 60.0
MAX_DELAY_MS = 60_000
MAX_EXPRESSION = 2000  # characters of a wait_for expression or a selector
MAX_INJECT_BYTES = 256 * 1024  # scripts and styles of one request, together


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
    frame_format: Literal["png", "jpeg", "webp", "canvas-jpeg"] | None = Field(
        default=None, description="webp / canvas-jpeg: the piece's canvas as WebP / JPEG when "
        "it is the whole picture, else JPEG screenshots (see oven.capture._canvas).")
    guard: GuardMode = Field(
        default="off",
        description="Check every request the page makes (raw URLs from clients): 'public' "
        "blocks private/loopback/link-local addresses and odd schemes, 'schemes' only odd "
        "schemes; 'off' for bundled pieces and the operator's own url_template.",
    )
    jpeg_quality: int | None = Field(default=None, ge=1, le=100,
                                     description="JPEG frames' quality; else the setting's.")
    webp_quality: int | None = Field(default=None, ge=1, le=100,
                                     description="Canvas WebP frames' quality; else "
                                     f"{DEFAULT_WEBP_QUALITY}.")
    # What clients ask of a capture (see oven.grabs.GrabRequest for their meaning).
    wait_for: str | None = Field(default=None, min_length=1, max_length=MAX_EXPRESSION)
    wait_for_selector: str | None = Field(default=None, min_length=1, max_length=MAX_EXPRESSION)
    delay_ms: int = Field(default=0, ge=0, le=MAX_DELAY_MS)
    selector: str | None = Field(default=None, min_length=1, max_length=MAX_EXPRESSION)
    background: Literal["page", "transparent"] = "page"
    color_scheme: Literal["light", "dark", "no-preference"] | None = None
    reduced_motion: bool = False
    scripts: list[str] = Field(default_factory=list)
    styles: list[str] = Field(default_factory=list)
    reject: list[Flag] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_wait(self) -> CaptureRequest:
        if self.wait_for is not None and self.wait_for_selector is not None:
            raise ValueError("give at most one of 'wait_for' and 'wait_for_selector'")
        if sum(len(text.encode()) for text in [*self.scripts, *self.styles]) > MAX_INJECT_BYTES:
            raise ValueError(f"scripts and styles: at most {MAX_INJECT_BYTES} bytes together")
        if self.background == "transparent" and self.frame_format not in (None, "png"):
            raise ValueError("background 'transparent' needs png frames")
        return self


@dataclass
class CaptureResult:
    frames: list[Path]
    frame_format: str
    pixel_width: int
    pixel_height: int
    ready: ReadyRule
    frozen: bool
    flags: list[Flag] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    page_errors: list[str] = field(default_factory=list)
    blocked_requests: list[str] = field(default_factory=list)  # "reason url", by the guard
    # Canvas frames: where each goes in the picture (a frame after the first may be only the
    # box that changed; see oven.capture._frames); [] for screenshots, which are whole.
    frame_offsets: list[tuple[int, int]] = field(default_factory=list)
    from_canvas: bool = False  # the frames are the piece's canvas, not screenshots

    def pictures(self, wanted: Iterable[int]) -> dict[int, Image.Image]:
        """The whole picture (RGB) at each wanted frame, canvas boxes laid over the frames
        before them."""
        return whole_pictures(self.frames, self.frame_offsets,
                              (self.pixel_width, self.pixel_height), wanted)


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
    watch: PageWatch | None = None
    try:
        await slot.prepare(request.density)
        watch = PageWatch(slot.page)
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
                             f"{first_line(exc)}") from exc
        if is_gone(slot, watch, exc):
            raise await slot.browser.lost(
                slot, f"browser gone during capture of {request.url}: {first_line(exc)}") from exc
        raise
    except BrowserGone as exc:
        raise await slot.browser.lost(slot, str(exc)) from exc
    finally:
        if watch is not None:
            watch.detach()


async def _crash_seen(watch: PageWatch) -> None:
    while not watch.crashed:
        watch.event.clear()
        await watch.event.wait()


async def _renderer_death(slot: Slot, watch: PageWatch, detail: str) -> Exception:
    """The error for a page whose renderer died: over its memory ceiling (permanent, the
    piece's fault, never retried) or any other crash (retried, counted toward freezing)."""
    verdict = await slot.browser.renderer_verdict(slot, at=watch.crashed_at or time.monotonic())
    if verdict.kind == "memory":
        log.info("%s: %s", verdict.message, detail)
        return MemoryCeilingExceeded(verdict.message)
    return RendererCrashed(f"{detail} ({verdict.message})")


async def _run(
    slot: Slot, watch: PageWatch, request: CaptureRequest, out_dir: Path, on_stage: StageHook
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
    await emulate(slot, request)
    if request.clock == "virtual":
        # Added first: the painted counter below then counts the clock's frames.
        await slot.add_init_script(VIRTUAL_CLOCK_JS)
    elif request.frames > 1 and settings.pace_frames:
        await slot.add_init_script(PACED_FRAMES_JS)
    if (request.wait_for is None and request.wait_for_selector is None
            and settings.ready_rule == "auto"):
        await slot.add_init_script(painted_script(settings.painted_frames))

    guard: RequestGuard | None = None
    if request.guard != "off":
        guard = RequestGuard(request.guard)
        await slot.guard_requests(guard)
    slot.start_job(guard)

    started = time.perf_counter()
    try:
        await _navigate(slot, watch, request.url, settings.navigation_timeout_s)
    except PieceError as exc:
        if guard is not None and guard.blocked:
            raise PieceError(f"{exc}; oven blocked {guard.blocked[0]}") from exc
        raise
    await inject(slot, watch, request)
    timings["navigate"] = time.perf_counter() - started

    on_stage("ready")
    started = time.perf_counter()
    probe = probe_for(request, contract=request.ready_expression or settings.ready_expression,
                      declared=settings.ready_declared_expression,
                      painted_frames=settings.painted_frames, rule=settings.ready_rule)
    ready, probe_error = await wait_ready(
        slot, watch, request, probe=probe,
        timeout_s=(settings.ready_timeout_s if request.ready_timeout_s is None
                   else request.ready_timeout_s),
    )
    await settle(slot, request)
    timings["ready"] = time.perf_counter() - started

    on_stage("capture")
    started = time.perf_counter()
    clip = await element_clip(slot, watch, request)
    frames = await take_frames(
        slot, request, out_dir, request.frame_format or settings.frame_format,
        request.jpeg_quality or settings.jpeg_quality, clip
    )
    flags = await asyncio.to_thread(
        flags_of, len(frames.paths), frames.digests,
        functools.partial(whole_pictures, frames.paths, frames.offsets, frames.size,
                          draft=True))
    timings["capture"] = time.perf_counter() - started

    errors = watch.page_errors()
    if probe_error is not None:
        errors.append(f"ready expression failed: {probe_error}")
    turned_down = [flag for flag in flags if flag in request.reject]
    if turned_down:
        because = f"; the page reported: {errors[0]}" if errors else ""
        raise NotAsAsked(f"capture rejected as {' and '.join(turned_down)} (asked to reject "
                         f"{', '.join(request.reject)}){because}")
    return CaptureResult(
        frames=frames.paths,
        frame_format=frames.taken,
        from_canvas=frames.from_canvas,
        frame_offsets=frames.offsets,
        pixel_width=frames.size[0],
        pixel_height=frames.size[1],
        ready=ready,
        frozen="frozen" in flags,
        flags=flags,
        timings=timings,
        page_errors=errors,
        blocked_requests=guard.summary() if guard is not None else [],
    )


async def _navigate(slot: Slot, watch: PageWatch, url: str, timeout_s: float) -> None:
    try:
        # domcontentloaded, not load: readiness is the piece's own contract, and a slow
        # sub-resource must not turn into a navigation failure.
        response = await slot.page.goto(
            url, wait_until="domcontentloaded", timeout=timeout_s * 1000
        )
    except PlaywrightTimeoutError as exc:
        raise PieceError(f"piece page did not load within {timeout_s:g} s: {url}") from exc
    except PlaywrightError as exc:
        if is_gone(slot, watch, exc):
            raise
        found = _NET_ERROR.search(exc.message)
        reason = found.group(0) if found else exc.message.splitlines()[0]
        raise PieceError(f"piece page failed to load ({reason}): {url}") from exc
    if response is not None and response.status >= 400:
        raise PieceError(f"piece page answered {response.status}: {url}")
