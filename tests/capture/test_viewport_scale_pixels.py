"""Art pixels end to end: frames scaled up by nearest neighbour stay exact in every lossless
output (PNG, lossless WebP, GIF), with real ffmpeg and, for the page, real Chromium.

A GIF of more than 256 colours is dithered: dithering after the upscale scattered its pattern
inside each art pixel (about a third of 4x4 blocks were no longer one colour).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from oven.capture import Browser, CaptureRequest, capture, piece_url
from oven.encode import EncodeRequest, EncoderSettings, Format, encode, running_pids
from oven.grabs import GrabRequest

SCALE = 4
ART = (48, 27)

# A 1-px checkerboard of two colours over the whole page, drawn pixel-exact (ImageData), so any
# smoothing anywhere shows as a third colour. Its phase flips every animation frame: frames of
# an animation differ (an encoder may merge identical ones).
CHECKERBOARD_JS = """(() => {
  const c = document.createElement("canvas"), w = innerWidth, h = innerHeight;
  c.width = w; c.height = h;
  c.style.cssText = "position:fixed;left:0;top:0;width:100vw;height:100vh;z-index:99";
  const g = c.getContext("2d"), data = g.createImageData(w, h);
  let phase = 0;
  const draw = () => {
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const on = (x + y + phase) % 2 === 0;
      data.data.set(on ? [250, 200, 20, 255] : [20, 40, 160, 255], 4 * (y * w + x));
    }
    g.putImageData(data, 0, 0);
    phase = 1 - phase;
    requestAnimationFrame(draw);
  };
  draw();
  document.body.appendChild(c);
})();"""
COLOURS = {(250, 200, 20), (20, 40, 160)}

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(autouse=True)
def no_ffmpeg_left_behind() -> Iterator[None]:
    yield
    assert running_pids() == frozenset()


def many_colour_frames(job_dir: Path, count: int = 4) -> list[Path]:
    """Noise over a gradient: thousands of colours, so a GIF must dither."""
    job_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    frames = []
    for k in range(count):
        image = Image.new("RGB", ART)
        for y in range(ART[1]):
            for x in range(ART[0]):
                image.putpixel((x, y), (x * 5 + k * 9, y * 9, rng.randrange(256)))
        path = job_dir / f"frame-{k:05d}.png"
        image.save(path)
        frames.append(path)
    return frames


def frames_of(path: Path) -> list[Image.Image]:
    out = []
    with Image.open(path) as image:
        for k in range(getattr(image, "n_frames", 1)):
            image.seek(k)
            out.append(image.convert("RGB"))
    return out


def blocks_not_one_colour(image: Image.Image, scale: int) -> int:
    pixels = image.load()
    assert pixels is not None
    width, height = image.size
    mixed = 0
    for top in range(0, height, scale):
        for left in range(0, width, scale):
            first = pixels[left, top]
            if any(pixels[left + i, top + j] != first
                   for j in range(scale) for i in range(scale)):
                mixed += 1
    return mixed


@pytest.mark.parametrize("fmt", [Format.PNG, Format.WEBP, Format.GIF])
async def test_every_art_pixel_is_one_colour_after_the_upscale(fmt: Format,
                                                               tmp_path: Path) -> None:
    frames = many_colour_frames(tmp_path / "frames", 1 if fmt is Format.PNG else 4)
    out = tmp_path / f"out.{fmt.extension}"
    await encode(EncodeRequest(frames=frames, fps=10, format=fmt, out_path=out, upscale=SCALE),
                 EncoderSettings(webp_lossless=True))
    decoded = frames_of(out)
    assert len(decoded) == len(frames)
    for k, frame in enumerate(decoded):
        assert frame.size == (ART[0] * SCALE, ART[1] * SCALE)
        assert blocks_not_one_colour(frame, SCALE) == 0, f"frame {k}"
        if fmt is not Format.GIF:  # lossless: exactly the source, repeated
            source = Image.open(frames[k]).convert("RGB")
            expected = source.resize(frame.size, Image.Resampling.NEAREST)
            assert frame.tobytes() == expected.tobytes()


@pytest.mark.parametrize("fmt", [Format.PNG, Format.GIF])
async def test_a_checkerboard_page_stays_two_coloured_at_scale_four(
        browser: Browser, tmp_path: Path, fmt: Format) -> None:
    frames = 1 if fmt is Format.PNG else 3
    grab = GrabRequest(piece="still", format=fmt, width=200, height=120, frames=frames,
                       viewport_scale=SCALE, scripts=[CHECKERBOARD_JS])
    request: CaptureRequest = grab.capture_request(piece_url("still"), guard="off",
                                                   encoder=EncoderSettings())
    captured = await capture(browser, request, tmp_path / "frames")
    assert (captured.pixel_width, captured.pixel_height) == (50, 30)
    out = tmp_path / f"out.{fmt.extension}"
    await encode(grab.encode_request(captured.frames, out), EncoderSettings())
    for frame in frames_of(out):
        assert frame.size == (200, 120)
        assert {colour for _, colour in frame.getcolors() or []} == COLOURS
        assert blocks_not_one_colour(frame, SCALE) == 0
        # The top-left art pixel is one colour, its neighbour the other: 4 px each.
        assert {frame.getpixel((3, 3)), frame.getpixel((4, 3))} == COLOURS
