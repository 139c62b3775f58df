"""The encoder's section of the config: typed, range-checked, unknown keys rejected."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

GifDither = Literal["bayer", "heckbert", "floyd_steinberg", "sierra2", "sierra2_4a", "none"]
X264Preset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"
]


class EncoderSettings(BaseModel):
    """How ffmpeg is found, bounded and tuned. Defaults favour speed on a small shared box."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ffmpeg_path: str = Field(
        "ffmpeg", min_length=1, description="ffmpeg executable: a name looked up on PATH or a path."
    )
    webpmux_path: str = Field(
        "webpmux", min_length=1, description="webpmux executable (Debian's webp): assembles "
        "canvas frames into an animated WebP (see canvas_frames)."
    )
    img2webp: bool = Field(
        True, description="A lossy animated WebP from JPEG frames is encoded by img2webp "
        "(Debian's webp; libwebp's animation encoder, as ffmpeg's libwebp_anim, without "
        "ffmpeg's ~0.1 CPU-s start); false: by ffmpeg."
    )
    img2webp_path: str = Field(
        "img2webp", min_length=1, description="img2webp executable (Debian's webp)."
    )
    ffprobe_path: str = Field(
        "ffprobe", min_length=1, description="ffprobe executable (used by `oven doctor` and tests)."
    )
    nice: int = Field(
        10, ge=0, le=19, description="Niceness of encodes (the Encoder's loop thread and "
        "ffmpeg), so the HTTP loop and the actors get the CPU first on a busy host "
        "(0 = oven's own priority). Takes effect at the next start."
    )
    concurrency: int = Field(
        0, ge=0, le=64, description="ffmpeg processes at once; 0 = one per usable CPU core."
    )
    timeout_s: float = Field(
        60.0, gt=0, le=3600, description="Wall-clock limit per encode; the process group is killed."
    )
    webp_quality: int = Field(80, ge=0, le=100, description="libwebp quality (lossy) or effort.")
    webp_lossless: bool = Field(False, description="Encode WebP losslessly (larger, exact pixels).")
    # 3, not libwebp's 4 or the max 6: on 16 busy 640x360 frames level 3 was as small as 4 and
    # within 2.5% of 6, which took 10x longer (3.8 s vs 0.38 s); 2 saved 0.1 s for +5% bytes.
    # 2, measured on 16 busy 640x360 frames: 0.27 s against 0.38 s for 3, files ~5% larger.
    # On a 2-core host encoding competes with capture, so speed wins; raise it for smaller files.
    webp_compression_level: int = Field(
        2, ge=0, le=6, description="libwebp method: 0 fastest/largest .. 6 slowest/smallest."
    )
    # ffmpeg 5.1's palettegen accepts 4..256 colours, so smaller values would fail at run time.
    gif_max_colors: int = Field(256, ge=4, le=256, description="GIF palette size (palettegen).")
    gif_dither: GifDither = Field("sierra2_4a", description="paletteuse dithering mode.")
    mp4_crf: int = Field(23, ge=0, le=51, description="libx264 CRF: 0 lossless .. 51 worst.")
    # veryfast: on 16 busy 640x360 frames as small as medium (168 KB vs 173 KB) in 0.17 s vs
    # 0.27 s; ultrafast saved 0.05 s but doubled the file.
    mp4_preset: X264Preset = Field("veryfast", description="libx264 speed/size preset.")
    jpeg_quality: int = Field(
        90, ge=1, le=100, description="JPEG quality 1..100, mapped onto ffmpeg's -q:v 31..2."
    )
    lossy_frames: Literal["jpeg", "png"] = Field(
        "jpeg", description="Frames captured for lossy outputs (JPEG, MP4, lossy WebP): jpeg "
        "costs Chromium less and loses little more (the browser's jpeg_quality); png frames "
        "for every output. PNG, GIF and lossless WebP always get png frames."
    )
    canvas_frames: bool = Field(
        True, description="A piece drawn on one canvas that fills the page: lossy WebP frames "
        "are the canvas's own WebP pictures (quality as webp_quality), assembled by webpmux "
        "with no second encode; an MP4's (or, without webpmux, a lossy WebP's) are the "
        "canvas's JPEG (as the screenshots, without the compositor). Any other page gets "
        "JPEG screenshots as before."
    )
    png_compression: int = Field(6, ge=0, le=9, description="zlib level for PNG output.")
    stderr_tail_bytes: int = Field(
        8192, ge=256, le=1_048_576, description="How much of ffmpeg's stderr is kept for errors."
    )

    def effective_concurrency(self) -> int:
        """The number of ffmpeg processes the Encoder lets run at once."""
        if self.concurrency:
            return self.concurrency
        # Affinity, not os.cpu_count(): a container or taskset may allow fewer cores than exist.
        return len(os.sched_getaffinity(0)) or 1

    def jpeg_qscale(self) -> int:
        """`jpeg_quality` as ffmpeg's mjpeg `-q:v`."""
        return jpeg_qscale(self.jpeg_quality)


def jpeg_qscale(quality: int) -> int:
    """JPEG quality (1 worst .. 100 best) as ffmpeg's mjpeg `-q:v` (31 worst .. 2 best)."""
    return round(31 - (quality - 1) * 29 / 99)
