"""Size and quality of an animated WebP made from canvas frames against one made by ffmpeg.

For each bundled canvas piece, on the virtual clock (so every way sees the same pictures):
PNG screenshots (the exact frames, the reference), then the two ways to a lossy WebP at the
same quality setting (`[encoder] webp_quality`, 80):
  - `jpeg_ffmpeg`: JPEG q90 screenshots, ffmpeg's libwebp_anim (method 2), oven's default before;
  - `canvas_webpmux`: the canvas's own WebP frames (toDataURL, libwebp in the renderer),
    assembled by webpmux as they are.
Each output is decoded frame by frame and compared with the reference: PSNR (dB, mean of the
frames' RGB PSNR), bytes, and the encode's wall time. One JSON line.

    .venv/bin/python bench/canvas_frames.py [--frames 16] [--size 640x360]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageStat

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from oven.capture import (
    Browser,
    BrowserSettings,
    CaptureRequest,
    capture,
    new_marker,
    piece_url,
)
from oven.encode import EncodeRequest, EncoderSettings, Format, encode

PIECES = ("anim", "clock", "still")


def psnr(a: Image.Image, b: Image.Image) -> float:
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    mse = sum(v * v for v in ImageStat.Stat(diff).rms) / 3
    return 99.0 if mse == 0 else 10 * math.log10(255 * 255 / mse)


def decoded(path: Path) -> tuple[list[Image.Image], list[int]]:
    """Every frame of the file as shown, and its duration in ms."""
    out: list[Image.Image] = []
    with Image.open(path) as image:
        durations = []
        for k in range(getattr(image, "n_frames", 1)):
            image.seek(k)
            frame = image.convert("RGB")  # loads the frame: its duration is known after
            durations.append(image.info.get("duration", 0))
            out.append(frame)
    return out, durations


async def one_piece(browser: Browser, piece: str, frames: int, size: tuple[int, int],
                    work: Path) -> dict[str, Any]:
    request = CaptureRequest(url=piece_url(piece), width=size[0], height=size[1], frames=frames,
                             fps=20, clock="virtual", frame_format="png")
    reference = await capture(browser, request, work / "png")
    exact = [Image.open(p).convert("RGB") for p in reference.frames]
    settings = EncoderSettings()
    out: dict[str, Any] = {}
    for name, frame_format in (("jpeg_ffmpeg", "jpeg"), ("canvas_webpmux", "webp")):
        taken = await capture(browser, request.model_copy(update={"frame_format": frame_format}),
                              work / name)
        started = time.perf_counter()
        result = await encode(EncodeRequest(frames=taken.frames, offsets=taken.frame_offsets,
                                             fps=20, format=Format.WEBP,
                                             out_path=work / f"{name}.webp"), settings)
        seconds = time.perf_counter() - started
        shown, durations = decoded(result.path)
        # The frame on screen at each 50 ms step (merged frames stand for their run).
        starts = [sum(durations[:i]) for i in range(len(durations))]
        steps = [shown[max(i for i, t in enumerate(starts) if t <= k * 50 + 1)]
                 for k in range(frames)]
        out[name] = {
            "frames_taken_as": taken.frame_format,
            "bytes": result.size,
            "psnr_db": round(sum(psnr(a, b) for a, b in zip(steps, exact, strict=True))
                             / len(exact), 2),
            "encode_s": round(seconds, 3),
            "frames_in_file": len(shown),
        }
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", default="640x360")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    browser = await Browser.launch(BrowserSettings(pages=1), marker=new_marker())
    try:
        with tempfile.TemporaryDirectory(prefix="oven-bench-canvas-") as tmp:
            pieces = {piece: await one_piece(browser, piece, args.frames, (width, height),
                                             Path(tmp) / piece) for piece in PIECES}
    finally:
        await browser.close(timeout_s=10)
    print(json.dumps({"bench": "canvas_frames", "frames": args.frames, "size": args.size,
                      "webp_quality": EncoderSettings().webp_quality,
                      "jpeg_frame_quality": BrowserSettings().jpeg_quality, "pieces": pieces}))


if __name__ == "__main__":
    asyncio.run(main())
