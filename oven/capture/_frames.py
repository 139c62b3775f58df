"""The frame loop of a capture: the page stepped to each frame, and each frame taken and written.

Frames are CDP screenshots (PNG or JPEG), or, asked for "webp" or "canvas-jpeg", the piece's
canvas where it is the whole picture (oven.capture._canvas). As WebP each frame after the first
is only the box of the canvas that changed since the one before, written with its offset, and a
frame where nothing changed repeats the one before (webpmux then shows it for both frames'
time). As JPEG each frame is whole, as a JPEG screenshot is, and the encoder treats them
alike (CaptureResult.from_canvas says which they were).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from PIL import Image

from oven import metrics
from oven.capture._canvas import MAX_PIXELS, CanvasFrames, CanvasPicture, same_picture
from oven.capture._clock import PACED_STEP, Step, virtual_step
from oven.capture._errors import BrowserGone

if TYPE_CHECKING:
    from oven.capture._browser import Slot
    from oven.capture._capture import CaptureRequest

log = logging.getLogger(__name__)

DEFAULT_WEBP_QUALITY = 80  # as the encoder's webp_quality
CHECK_JPEG_QUALITY = 90  # of the screenshot the first canvas frame is checked against
Held = CanvasPicture | Literal["same"]  # a canvas frame taken, not yet written


@dataclass
class Frames:
    paths: list[Path]
    digests: list[bytes]  # of each frame's bytes: equal digests, the same picture
    size: tuple[int, int]  # of the whole frame, in device pixels
    taken: str  # "png", "jpeg" or "webp"
    # Where each canvas frame goes in the picture (webp only; (0, 0) for a whole frame).
    offsets: list[tuple[int, int]] = field(default_factory=list)
    from_canvas: bool = False  # every frame is the piece's canvas (WebP or JPEG)


async def take_frames(
    slot: Slot, request: CaptureRequest, out_dir: Path, frame_format: str, jpeg_quality: int,
    clip: dict[str, float] | None,
) -> Frames:
    """CDP Page.captureScreenshot, paced at 1/fps on the real clock; before each, the page's
    animation frame is run (the virtual clock's step, or the paced frame: see oven.capture._clock).
    Asked for "webp" or "canvas-jpeg", the frames are the piece's canvas when it is the whole
    picture, else JPEG screenshots.

    Playwright's page.screenshot adds work (and ~2x the time on slower hosts); the CDP screencast
    gives frames only when the compositor produces one (none for a still) and at its own rate.
    """
    canvas: CanvasFrames | None = None
    outcome = ""  # of canvas frames asked for (oven_capture_canvas_frames_total)
    canvas_webp = frame_format == "webp"
    if frame_format in ("webp", "canvas-jpeg"):
        pixels = request.width * request.height * request.density ** 2
        if clip is None and pixels <= MAX_PIXELS:
            canvas = await (
                CanvasFrames.open(slot, "webp", request.webp_quality or DEFAULT_WEBP_QUALITY)
                if canvas_webp else CanvasFrames.open(slot, "jpeg", jpeg_quality))
        outcome = "canvas" if canvas is not None else "probe"
        frame_format = "jpeg"  # the screenshots' format, if the canvas is not the picture
    # A still's PNG is kept as the result itself (the encoder takes it as it is): compressed
    # for keeping it costs Chromium ~5 ms more and halves the bytes. Animation frames are read
    # once by ffmpeg and deleted, so they are compressed for speed.
    keep = request.frames == 1 and frame_format == "png"
    params: dict[str, Any] = {"format": frame_format, "optimizeForSpeed": not keep}
    if frame_format == "jpeg":
        params["quality"] = jpeg_quality
    if clip is not None:
        params["clip"] = clip
    frame_s = 1.0 / request.fps
    step: Step | None = None
    if request.clock == "virtual":
        step = virtual_step(1000.0 / request.fps)
    elif request.frames > 1 and slot.browser.settings.pace_frames:
        step = PACED_STEP
        await slot.page.evaluate("window.__ovenPace && window.__ovenPace.hold()")
    out_dir.mkdir(parents=True, exist_ok=True)
    taken = Frames([], [], (0, 0), frame_format)
    held = _Held(canvas, taken, out_dir, canvas_webp) if canvas is not None else None
    t0 = time.monotonic()
    for k in range(request.frames):
        if k and request.clock == "real":
            await asyncio.sleep(max(0.0, t0 + k * frame_s - time.monotonic()))
        # On the virtual clock a canvas frame's encode runs while the page is stepped on to
        # the next (16-frame grabs on 2 pages: 3.8-3.9 s for 19, 4.1-4.3 s encoding each at
        # once); the real clock waits between frames anyway.
        picture = (await canvas.frame(step, later=k > 0 and request.clock == "virtual")
                   if canvas is not None else None)
        if step is not None and (canvas is None or not canvas.stepped):
            await slot.page.evaluate(step.expression)
        if canvas is not None and picture is None and k:
            # The canvas stopped giving frames midway (tainted by a late cross-origin image):
            # the rest are screenshots, and one sequence has one format.
            assert held is not None
            await held.write(wait=True)
            if canvas_webp:
                await asyncio.to_thread(_as_jpeg, taken, jpeg_quality)
            outcome = "midway"
        if k == 0 and isinstance(picture, CanvasPicture):
            assert canvas is not None
            # Compared at no less than q90, whose blocks stay inside the check's tolerance.
            check = {**params, "quality": max(CHECK_JPEG_QUALITY, jpeg_quality)}
            exact, shot = await canvas.exact_frame(), await _screenshot(slot, check)
            if exact is None or not await asyncio.to_thread(same_picture, exact, shot):
                log.debug("screenshots, not canvas frames: the canvas is not what is shown")
                outcome = "check"
                picture, taken.paths = None, []
                if check != params:
                    shot = await _screenshot(slot, params)
                await _write(taken, out_dir, k, shot, "jpg")
                canvas = None
                continue
        if picture is None:
            if canvas is not None and k == 0:
                outcome = "check"  # the canvas could not be read at all (tainted)
            canvas = None
            suffix = "png" if frame_format == "png" else "jpg"
            await _write(taken, out_dir, k, await _screenshot(slot, params), suffix)
        else:
            assert held is not None
            await held.add(k, picture)
    if canvas is not None and held is not None:
        await held.write(wait=True)
    taken.from_canvas = canvas is not None
    if canvas is not None and canvas_webp:
        taken.taken = "webp"
    if outcome:
        metrics.CANVAS_FRAMES.labels(outcome=outcome).inc()
    return taken


class _Held:
    """Canvas frames taken and not yet written: each is written, in order, as soon as its bytes
    are there (at once when encoded at once, with a later answer when its encode ran on), so a
    long capture never holds more than the encodes in flight."""

    def __init__(self, canvas: CanvasFrames, frames: Frames, out_dir: Path, webp: bool) -> None:
        self.canvas, self.frames, self.out_dir, self.webp = canvas, frames, out_dir, webp
        self.entries: list[tuple[int, Held]] = []
        # The last frame written, which a frame where nothing changed repeats (the same bytes
        # at the same place).
        self.last: tuple[bytes, tuple[int, int]] = (b"", (0, 0))

    async def add(self, k: int, picture: Held) -> None:
        self.entries.append((k, picture))
        await self.write(wait=False)

    async def write(self, *, wait: bool) -> None:
        """Write the frames whose bytes are there; with `wait`, every frame (waiting for the
        encodes in flight)."""
        while self.entries:
            k, picture = self.entries[0]
            if picture == "same":
                data, offset = self.last
            elif picture.data is not None:
                data, offset = picture.data, (picture.x, picture.y)
            elif wait or self.canvas.has_encoded(picture.encode):
                got = await self.canvas.encoded(picture.encode)
                if got is None:
                    raise BrowserGone(f"the canvas's encoder failed frame {k}")
                data, offset = got, (picture.x, picture.y)
            else:
                return
            self.entries.pop(0)
            if self.webp:
                await _write(self.frames, self.out_dir, k, data, "webp", offset)
                self.last = (data, offset)
            else:
                await _write(self.frames, self.out_dir, k, data, "jpg")


async def _write(frames: Frames, out_dir: Path, k: int, data: bytes, suffix: str,
                 offset: tuple[int, int] | None = None) -> None:
    if k == 0:
        frames.size = Image.open(io.BytesIO(data)).size  # reads the header only
    path = out_dir / f"frame-{k:05d}.{suffix}"
    # A ~100 KB write on the loop costs less than a hop to a thread.
    path.write_bytes(data)
    frames.paths.append(path)
    frames.digests.append(hashlib.blake2b(data, digest_size=16).digest())
    if offset is not None:
        frames.offsets.append(offset)


async def _screenshot(slot: Slot, params: dict[str, Any]) -> bytes:
    shot = await slot.cdp.send("Page.captureScreenshot", params)
    return base64.b64decode(shot["data"])


def whole_pictures(paths: Sequence[Path], offsets: Sequence[tuple[int, int]],
                   size: tuple[int, int], wanted: Iterable[int], *, draft: bool = False
                   ) -> dict[int, Image.Image]:
    """The whole picture at each wanted frame (RGB): a canvas frame that is a changed box is
    laid over the pictures before it, back to the last whole frame (found from the headers).
    `draft`: a JPEG may be decoded at 1/8 of its size (enough for the quality flags)."""
    out: dict[int, Image.Image] = {}
    if not offsets:  # screenshots: every frame is whole
        for k in set(wanted):
            with Image.open(paths[k]) as image:
                if draft:
                    image.draft("RGB", (image.width // 8 or 1, image.height // 8 or 1))
                out[k] = image.convert("RGB")
        return out
    picture: Image.Image | None = None
    at = -1  # the frame `picture` shows
    for k in sorted(set(wanted)):
        start = k
        while start > 0 and _size(paths[start]) != size:
            start -= 1
        if picture is None or start > at:
            picture, at = None, start - 1
        for j in range(at + 1, k + 1):
            with Image.open(paths[j]) as part:
                if picture is None or part.size == size:
                    picture = part.convert("RGB")
                else:
                    picture.paste(part.convert("RGB"), offsets[j])
        at = k
        assert picture is not None
        out[k] = picture.copy()
    return out


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:  # the header only
        return image.size


def _as_jpeg(frames: Frames, quality: int) -> None:
    """Canvas frames turned into the JPEG screenshots that follow them (a rare path): whole
    pictures, as the screenshots are."""
    pictures = whole_pictures(frames.paths, frames.offsets, frames.size,
                              range(len(frames.paths)))
    jpegs = []
    for k, path in enumerate(frames.paths):
        jpeg = path.with_suffix(".jpg")
        pictures[k].save(jpeg, "JPEG", quality=quality)
        path.unlink()
        jpegs.append(jpeg)
    frames.paths, frames.offsets = jpegs, []
