"""Which frames a capture should take for an output: the cheapest that keep the output as good.

Measured on the anim piece, 640x360, virtual clock (the same pictures either way): a JPEG q90
frame costs Chromium ~4 ms less of its ~24 ms per frame (browser process: its PNG encode, and
twice the bytes base64'd through Playwright's pipe), ~0.07 CPU-s a 16-frame grab; ffmpeg decodes
either in the same time. Against the PNG frames' output, the WebP (quality 80) of JPEG frames lost
1.7 dB PSNR (36.8 -> 35.1) and was 5% smaller; an MP4 (crf 23) lost 0.4 dB (34.2 -> 33.8) and was
3% larger. Outputs whose pixels are exact or chosen from exact pixels (PNG, GIF's palette,
lossless WebP) keep PNG frames. Lossy WebP of a canvas piece takes the canvas's own WebP
(see oven.capture._canvas): 0.83-0.86 CPU-s a grab against 1.18 with JPEG frames and ffmpeg.
"""

from __future__ import annotations

from typing import Literal

from ._format import Format
from ._settings import EncoderSettings
from ._webpmux import webpmux_found

FrameFormat = Literal["png", "jpeg", "webp", "canvas-jpeg"]


def frame_format_for(fmt: Format, settings: EncoderSettings, *, still: bool = False
                     ) -> FrameFormat:
    """The frame format a capture for an output of `fmt` should take.

    A JPEG still of JPEG frames is Chromium's JPEG as it is (no ffmpeg run at all), as a PNG
    still of PNG frames is. "webp" asks for the piece's canvas as WebP where it is the whole
    picture (oven.capture falls back to JPEG screenshots elsewhere): a WebP still is then that
    frame as it is, an animation its frames assembled by webpmux. "canvas-jpeg" asks for the
    canvas as whole JPEG frames, byte for byte the JPEG screenshots of the same instants on
    the pieces measured, without the compositor's read-back and the browser process's encode:
    an MP4 of `anim` (16 frames, 640x360, virtual clock) cost 0.87 CPU-s a grab against 0.99
    with screenshots (browser process -0.09, GPU -0.08, renderer +0.03; medians of 3 x 8
    grabs beside a loaded machine). A still never takes canvas JPEG: the canvas's probe and
    first-frame check cost more than the one screenshot they would save.

    Canvas JPEG frames into img2webp were measured for lossy WebP too, and are taken only
    where webpmux is missing: on `anim` they saved 0.02-0.07 CPU-s a grab against the canvas's
    WebP (img2webp's ~0.28 CPU-s against the renderer's WebP encode) and lost 2 dB PSNR (35.1
    against 37.3 dB; 0.6 dB with q100 frames, 10 % larger), the frames being coded twice.
    """
    if settings.lossy_frames == "png":
        return "png"
    lossy_webp = fmt is Format.WEBP and not settings.webp_lossless
    if lossy_webp and settings.canvas_frames and webpmux_found(settings.webpmux_path):
        return "webp"
    if settings.canvas_frames and not still and (lossy_webp or fmt is Format.MP4):
        return "canvas-jpeg"
    return "jpeg" if lossy_webp or fmt in (Format.JPEG, Format.MP4) else "png"
