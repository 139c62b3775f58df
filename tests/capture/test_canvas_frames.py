"""Frames from the piece's own canvas (oven.capture._canvas), real Chromium: taken only where
the canvas is the whole picture, and then the same picture a screenshot shows."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from oven import metrics
from oven.capture import Browser, CaptureRequest, CaptureResult, capture, piece_url

from .conftest import PageServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

FRAMES = 8
# The canvas's own WebP (each frame the box that changed, for webpmux), or whole JPEG frames
# (for img2webp): frame format asked, file suffix, PIL format.
CANVAS = [("webp", ".webp", "WEBP"), ("canvas-jpeg", ".jpg", "JPEG")]
AS = pytest.mark.parametrize(("asked", "suffix", "kind"), CANVAS, ids=["webp", "jpeg"])
TAKEN = {"webp": "webp", "canvas-jpeg": "jpeg"}  # CaptureResult.frame_format of canvas frames


def psnr(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    mse = sum(v * v for v in ImageStat.Stat(diff).rms) / 3
    return math.inf if mse == 0 else 10 * math.log10(255 * 255 / mse)


def counted(outcome: str) -> float:
    """oven_capture_canvas_frames_total{outcome} (captures run in this process)."""
    value: float = metrics.CANVAS_FRAMES.labels(outcome=outcome)._value.get()
    return value


async def both_ways(browser: Browser, url: str, out: Path, asked: str = "webp") -> tuple[
        CaptureResult, list[Image.Image], list[Image.Image]]:
    """The page on the virtual clock asked for canvas frames, and as PNG screenshots; the
    whole pictures of each."""
    request = CaptureRequest.model_validate({
        "url": url, "width": 640, "height": 360, "frames": FRAMES, "fps": 20,
        "clock": "virtual", "frame_format": asked})
    canvas = await capture(browser, request, out / "canvas")
    shots = await capture(browser, request.model_copy(update={"frame_format": "png"}),
                          out / "png")
    every = range(FRAMES)
    return canvas, list(canvas.pictures(every).values()), list(shots.pictures(every).values())


@AS
@pytest.mark.parametrize("path", ["/canvas", "/canvas-hostile", "/canvas-own-background"])
async def test_a_canvas_filling_the_page_gives_frames_of_it_that_match_the_screenshots(
        browser: Browser, page_server: PageServer, tmp_path: Path, path: str, asked: str,
        suffix: str, kind: str) -> None:
    # /canvas-hostile replaces toDataURL, drawImage and elementFromPoint in its own world:
    # the probe runs in an isolated one and never calls them.
    before = counted("canvas")
    result, pictures, shots = await both_ways(browser, page_server.base + path, tmp_path, asked)
    assert result.from_canvas and result.frame_format == TAKEN[asked]
    assert counted("canvas") == before + 1
    assert [f.suffix for f in result.frames] == [suffix] * FRAMES
    with Image.open(result.frames[0]) as first:  # whole, opaque
        assert (first.format, first.size, first.mode) == (kind, (640, 360), "RGB")
    # The canvas is drawn with alpha over the body's colour: the frames are composited onto it.
    for k, (picture, shot) in enumerate(zip(pictures, shots, strict=True)):
        assert psnr(picture, shot) > 30, k


@pytest.mark.parametrize(("path", "why", "outcome"), [
    ("/canvas-label", "a box over the canvas between the probed points", "check"),
    ("/canvas-tainted", "a canvas tainted by an image of another origin", "check"),
    ("/canvas-centre-label", "a box over the middle of the canvas", "probe"),
    ("/canvas-filter", "a CSS filter on the canvas", "probe"),
    ("/canvas-half-size", "a canvas of half the viewport's pixels, scaled up", "probe"),
    ("/canvas-translucent-background", "a translucent background colour", "probe"),
    ("/unsignalled", "a canvas below a header", "probe"),
])
@pytest.mark.parametrize("asked", ["webp", "canvas-jpeg"])
async def test_a_page_where_the_canvas_is_not_the_whole_picture_gets_screenshots(
        browser: Browser, page_server: PageServer, tmp_path: Path, path: str, why: str,
        outcome: str, asked: str) -> None:
    before = counted(outcome)
    result, pictures, shots = await both_ways(browser, page_server.base + path, tmp_path, asked)
    assert result.frame_format == "jpeg" and not result.from_canvas, why
    assert counted(outcome) == before + 1, why
    assert [f.suffix for f in result.frames] == [".jpg"] * FRAMES
    similarity = [round(psnr(p, s), 1) for p, s in zip(pictures, shots, strict=True)]
    assert all(value > 30 for value in similarity), (why, similarity)


@pytest.mark.parametrize("asked", ["webp", "canvas-jpeg"])
async def test_a_canvas_swapped_midway_turns_the_capture_to_screenshots_for_every_frame(
        browser: Browser, page_server: PageServer, tmp_path: Path, asked: str) -> None:
    before = counted("midway")
    result, pictures, shots = await both_ways(browser, page_server.base + "/canvas-swapped",
                                              tmp_path, asked)
    assert result.frame_format == "jpeg" and not result.from_canvas
    assert counted("midway") == before + 1
    frames = result.frames
    assert [f.suffix for f in frames] == [".jpg"] * FRAMES  # the canvas frames taken first too
    assert result.frame_offsets == []
    assert sorted(p.name for p in frames[0].parent.iterdir()) == [f.name for f in frames]
    for frame in frames:  # whole pictures, as screenshots are
        with Image.open(frame) as image:
            assert image.size == (640, 360)
    similarity = [round(psnr(p, s), 1) for p, s in zip(pictures, shots, strict=True)]
    assert all(value > 30 for value in similarity), (result.from_canvas, similarity)


@pytest.mark.parametrize("asked", ["webp", "canvas-jpeg"])
@pytest.mark.parametrize("piece", ["anim", "clock", "webgl"])
async def test_bundled_pieces_captured_as_canvas_frames_or_not_show_what_screenshots_show(
        browser: Browser, tmp_path: Path, piece: str, asked: str) -> None:
    result, pictures, shots = await both_ways(browser, piece_url(piece), tmp_path, asked)
    if piece != "webgl":  # WebGL: whichever the first-frame check found; the pictures agree
        assert result.from_canvas and result.frame_format == TAKEN[asked]
    similarity = [round(psnr(p, s), 1) for p, s in zip(pictures, shots, strict=True)]
    assert all(value > 30 for value in similarity), (result.from_canvas, similarity)


@pytest.mark.parametrize("asked", ["webp", "canvas-jpeg"])
async def test_canvas_frames_on_the_virtual_clock_are_reproducible(
        browser: Browser, tmp_path: Path, asked: str) -> None:
    request = CaptureRequest.model_validate({
        "url": piece_url("anim"), "width": 320, "height": 180, "frames": FRAMES,
        "clock": "virtual", "frame_format": asked})
    first = await capture(browser, request, tmp_path / "a")
    second = await capture(browser, request, tmp_path / "b")
    assert first.from_canvas and second.from_canvas
    assert first.frame_format == second.frame_format == TAKEN[asked]
    assert [p.read_bytes() for p in first.frames] == [p.read_bytes() for p in second.frames]


async def test_canvas_frames_are_at_device_pixels_and_take_the_quality_asked(
        browser: Browser, tmp_path: Path) -> None:
    request = CaptureRequest(url=piece_url("anim"), width=320, height=180, density=2, frames=2,
                             clock="virtual", frame_format="webp", webp_quality=95)
    fine = await capture(browser, request, tmp_path / "fine")
    coarse = await capture(browser, request.model_copy(update={"webp_quality": 20}),
                           tmp_path / "coarse")
    assert fine.frame_format == coarse.frame_format == "webp"
    assert (fine.pixel_width, fine.pixel_height) == (640, 360)
    with Image.open(fine.frames[0]) as image:
        assert image.size == (640, 360)
    assert fine.frames[0].stat().st_size > 2 * coarse.frames[0].stat().st_size


async def test_canvas_jpeg_frames_take_the_jpeg_quality_asked(
        browser: Browser, tmp_path: Path) -> None:
    request = CaptureRequest(url=piece_url("anim"), width=320, height=180, density=2, frames=2,
                             clock="virtual", frame_format="canvas-jpeg", jpeg_quality=95)
    fine = await capture(browser, request, tmp_path / "fine")
    coarse = await capture(browser, request.model_copy(update={"jpeg_quality": 20}),
                           tmp_path / "coarse")
    assert fine.from_canvas and coarse.from_canvas
    with Image.open(fine.frames[0]) as image:
        assert (image.format, image.size) == ("JPEG", (640, 360))
    assert fine.frames[0].stat().st_size > 2 * coarse.frames[0].stat().st_size


async def test_a_canvas_failing_the_first_frame_check_gets_screenshots_at_the_quality_asked(
        browser: Browser, page_server: PageServer, tmp_path: Path) -> None:
    # The check's own screenshot is taken at q90 at least; the frame kept must be at the
    # quality asked, as every screenshot after it is.
    tables = {}
    for quality in (95, 20):
        result = await capture(browser, CaptureRequest(
            url=page_server.base + "/canvas-label", width=640, height=360, frames=2,
            clock="virtual", frame_format="canvas-jpeg", jpeg_quality=quality),
            tmp_path / str(quality))
        assert not result.from_canvas and result.frame_format == "jpeg"
        first, second = (_quantization(frame) for frame in result.frames)
        assert first == second, quality  # one quality for the whole sequence
        tables[quality] = first
    assert tables[95] != tables[20]


def _quantization(path: Path) -> dict[int, list[int]]:
    """A JPEG's quantization tables: what its encoder's quality setting leaves in the file."""
    with Image.open(path) as image:
        assert image.format == "JPEG"
        return {k: list(v) for k, v in image.quantization.items()}  # type: ignore[attr-defined]


@pytest.mark.parametrize("asked", ["webp", "canvas-jpeg"])
async def test_an_element_clip_or_a_transparent_background_never_takes_canvas_frames(
        browser: Browser, tmp_path: Path, asked: str) -> None:
    clipped = await capture(browser, CaptureRequest.model_validate({
        "url": piece_url("anim"), "width": 320, "height": 180, "frames": 2,
        "clock": "virtual", "frame_format": asked, "selector": "canvas"}), tmp_path / "clip")
    assert clipped.frame_format == "jpeg" and not clipped.from_canvas
    with pytest.raises(ValueError, match="transparent' needs png frames"):
        CaptureRequest.model_validate({"url": piece_url("anim"), "frame_format": asked,
                                       "background": "transparent"})


async def test_later_canvas_frames_are_the_box_that_changed_and_a_still_one_repeats(
        browser: Browser, page_server: PageServer, tmp_path: Path) -> None:
    # The clock piece moves its hands only; /canvas-paused stops drawing after 3 frames.
    clock = await capture(browser, CaptureRequest(
        url=piece_url("clock"), width=640, height=360, frames=FRAMES, fps=20, clock="virtual",
        frame_format="webp"), tmp_path / "clock")
    assert clock.frame_format == "webp" and clock.frame_offsets[0] == (0, 0)
    sizes = []
    for frame, (x, y) in zip(clock.frames[1:], clock.frame_offsets[1:], strict=True):
        with Image.open(frame) as image:
            sizes.append(image.size)
            assert x % 2 == y % 2 == 0
            assert x + image.width <= 640 and y + image.height <= 360
    assert all(w * h < 640 * 360 // 2 for w, h in sizes), sizes
    paused = await capture(browser, CaptureRequest(
        url=page_server.base + "/canvas-paused", width=320, height=180, frames=FRAMES,
        clock="virtual", frame_format="webp"), tmp_path / "paused")
    assert paused.frame_format == "webp"
    tail = [frame.read_bytes() for frame in paused.frames[4:]]
    assert all(data == tail[0] for data in tail)
    assert len(set(paused.frame_offsets[4:])) == 1


async def test_past_the_canvas_pixel_bound_or_in_a_document_without_a_page_screenshots_are_taken(
        browser: Browser, tmp_path: Path) -> None:
    # 2600x1700 device pixels: past MAX_PIXELS (each frame holds three more copies of the
    # picture in the renderer, which must stay inside a small host's page ceiling).
    before = counted("probe")
    large = await capture(browser, CaptureRequest(
        url=piece_url("anim"), width=1300, height=850, density=2, frames=2, clock="virtual",
        frame_format="webp"), tmp_path / "large")
    assert large.frame_format == "jpeg"
    assert counted("probe") == before + 1
    # An SVG document: no HTML canvas, no body.
    svg = ("data:image/svg+xml," + '<svg xmlns="http://www.w3.org/2000/svg" width="64" '
           'height="64"><rect width="64" height="64" fill="red"/></svg>')
    drawn = await capture(browser, CaptureRequest(url=svg, width=64, height=64, frames=2,
                                                  clock="virtual", frame_format="webp"),
                          tmp_path / "svg")
    assert drawn.frame_format == "jpeg"


def pixel_reads(how: str) -> float:
    """oven_capture_canvas_pixel_reads_total{how} (captures run in this process)."""
    value: float = metrics.CANVAS_PIXEL_READS.labels(how=how)._value.get()
    return value


@pytest.mark.parametrize("clock", ["virtual", "real"])
async def test_canvas_webp_frames_read_their_pixels_into_kept_buffers_not_new_image_data(
        browser: Browser, tmp_path: Path, clock: str) -> None:
    # Each WebP frame's pixels are read to find the box that changed. getImageData would leave
    # a new ~0.9 MB buffer a frame in the renderer until a full collection (~12 MB more of it at
    # the peak of a 16-frame capture); VideoFrame.copyTo reads into two buffers kept for the
    # capture. Every frame is read, a frame where nothing changed too.
    video, image = pixel_reads("video_frame"), pixel_reads("image_data")
    result = await capture(browser, CaptureRequest(
        url=piece_url("clock"), width=640, height=360, frames=FRAMES, fps=20, clock=clock,
        frame_format="webp"), tmp_path)
    assert result.from_canvas and result.frame_format == "webp"
    assert pixel_reads("video_frame") - video == FRAMES
    assert pixel_reads("image_data") == image


@pytest.mark.parametrize("clock", ["virtual", "real"])
async def test_a_page_that_swallows_the_step_sent_with_a_canvas_frame_is_still_stepped(
        browser: Browser, page_server: PageServer, tmp_path: Path, clock: str) -> None:
    # A canvas frame carries the clock's step (a DOM event the clock's listener runs): one
    # round trip a frame. A page that stops the event before the listener hears it is
    # stepped through its world instead, each frame once: every frame a new picture, and on
    # the virtual clock the same pictures as the page that lets the event through.
    def request(path: str) -> CaptureRequest:
        return CaptureRequest(url=page_server.base + path, width=320, height=180,
                              frames=FRAMES, fps=20, clock=clock, frame_format="webp")
    swallowed = await capture(browser, request("/canvas-step-swallowed"), tmp_path / "s")
    assert swallowed.from_canvas and swallowed.frame_format == "webp"
    pictures = list(swallowed.pictures(range(FRAMES)).values())
    assert len({p.tobytes() for p in pictures}) == FRAMES
    if clock == "virtual":
        plain = await capture(browser, request("/canvas"), tmp_path / "p")
        assert [p.tobytes() for p in plain.pictures(range(FRAMES)).values()] == [
            p.tobytes() for p in pictures]


@pytest.mark.parametrize(("clock", "frames"), [("real", 40), ("virtual", 160)])
async def test_canvas_frames_are_written_while_the_capture_goes_on(
        browser: Browser, page_server: PageServer, tmp_path: Path, clock: str,
        frames: int) -> None:
    # Each canvas frame is written as soon as its bytes are there (on the virtual clock, with
    # the answer after its encode ran on): a long capture holds no more than the encodes in
    # flight, never every frame until its end.
    task = asyncio.create_task(capture(browser, CaptureRequest(
        url=page_server.base + "/canvas", width=640, height=360, frames=frames, fps=20,
        clock=clock, frame_format="webp"), tmp_path))
    seen: set[int] = set()  # how many frame files there were, polled as the capture goes on
    while not task.done():
        seen.add(len(list(tmp_path.glob("frame-*.webp"))))
        await asyncio.sleep(0.01)
    result = await task
    assert result.from_canvas and len(result.frames) == frames
    # Written all at once at the end, the count would jump from none to all.
    assert any(0 < n <= frames // 2 for n in seen), sorted(seen)
