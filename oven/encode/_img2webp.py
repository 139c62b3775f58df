"""Animated lossy WebP from JPEG frames with libwebp's own img2webp (Debian's webp).

It drives the encoder ffmpeg's libwebp_anim drives (libwebp's WebPAnimEncoder, frame deltas
and all) at the same quality and method, without ffmpeg's start: Debian's ffmpeg spends ~0.1
CPU-s of every run in the dynamic loader. Measured on 16 JPEG frames (q90) of `anim` at
640x360, quality 80, method 2, three runs each beside a CPU hog: ffmpeg 0.41-0.43 CPU-s, 171 KB,
36.35 dB PSNR against the PNG frames; img2webp 0.27-0.28 CPU-s, 172 KB, 36.21 dB.
"""

from __future__ import annotations

from pathlib import Path

from ._format import Format
from ._request import EncodeRequest
from ._settings import EncoderSettings
from ._webpmux import durations_ms

JPEG_FRAME_SUFFIX = ".jpg"


def may_use_img2webp(request: EncodeRequest, settings: EncoderSettings) -> bool:
    """JPEG frames for a lossy animated WebP at their own size."""
    lossless = settings.webp_lossless and request.quality is None
    return (settings.img2webp and request.format is Format.WEBP and not request.still
            and not lossless and request.upscale == 1
            and request.frames[0].suffix == JPEG_FRAME_SUFFIX)


def img2webp_command(request: EncodeRequest, settings: EncoderSettings,
                     out_path: Path) -> list[str]:
    """img2webp's argv: the file options, then the frame options once (they hold for every
    frame after them), then each frame with its time on screen."""
    quality = settings.webp_quality if request.quality is None else request.quality
    argv = [settings.img2webp_path, "-loop", "0",
            "-lossy", "-q", str(quality), "-m", str(settings.webp_compression_level)]
    for frame, ms in zip(request.frames, durations_ms(len(request.frames), request.fps),
                         strict=True):
        argv += ["-d", str(max(1, ms)), str(frame.absolute())]
    return [*argv, "-o", str(out_path)]
