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

FrameFormat = Literal["png", "jpeg", "webp"]


def frame_format_for(fmt: Format, settings: EncoderSettings) -> FrameFormat:
    """The frame format a capture for an output of `fmt` should take.

    A JPEG still of JPEG frames is Chromium's JPEG as it is (no ffmpeg run at all), as a PNG
    still of PNG frames is. "webp" asks for the piece's canvas as WebP where it is the whole
    picture (oven.capture falls back to JPEG screenshots elsewhere): a WebP still is then that
    frame as it is, an animation its frames assembled by webpmux.
    """
    if settings.lossy_frames == "png":
        return "png"
    lossy_webp = fmt is Format.WEBP and not settings.webp_lossless
    if lossy_webp and settings.canvas_frames and webpmux_found(settings.webpmux_path):
        return "webp"
    return "jpeg" if lossy_webp or fmt in (Format.JPEG, Format.MP4) else "png"
