"""Output formats, defined once: what grabs accept, what encode makes, what HTTP serves.

A new format is one row in `_SPECS` plus its ffmpeg arguments in `_commands.py`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FormatSpec:
    content_type: str
    suffix: str  # file name extension without the dot
    animates: bool  # can hold more than one frame
    encoders: tuple[str, ...]  # ffmpeg encoders its output needs (checked at startup)
    # The sync route (GET /grab/...) captures an animation when the request names no frame
    # count: people ask for GIF and MP4 to see motion, for WebP as often for a still.
    motion_by_default: bool = False
    keeps_alpha: bool = False  # transparent pixels survive into the file
    lossy: bool = False  # takes a quality (1..100)
    # The fastest it plays: GIF delays are whole centiseconds, and browsers play a delay under
    # 2 cs as 10 cs, so a GIF above 50 fps plays slower than one at 50.
    max_playback_fps: float | None = None


class Format(enum.StrEnum):
    PNG = "png"
    JPEG = "jpeg"
    WEBP = "webp"
    GIF = "gif"
    MP4 = "mp4"

    @property
    def spec(self) -> FormatSpec:
        return _SPECS[self]

    @property
    def content_type(self) -> str:
        return self.spec.content_type

    @property
    def extension(self) -> str:
        """File name extension without the dot (`jpg` for JPEG)."""
        return self.spec.suffix

    @property
    def animates(self) -> bool:
        """Whether the format can hold more than one frame."""
        return self.spec.animates

    @property
    def encoders(self) -> tuple[str, ...]:
        return self.spec.encoders

    @property
    def motion_by_default(self) -> bool:
        return self.spec.motion_by_default

    @property
    def keeps_alpha(self) -> bool:
        return self.spec.keeps_alpha

    @property
    def max_playback_fps(self) -> float | None:
        return self.spec.max_playback_fps

    @property
    def lossy(self) -> bool:
        """Whether a request may name its quality (WebP: unless encoded losslessly)."""
        return self.spec.lossy

    @classmethod
    def from_suffix(cls, suffix: str) -> Format | None:
        """The format a stored file's extension (`jpg`) or a format name (`jpeg`) stands for."""
        for fmt in cls:
            if suffix in (fmt.extension, fmt.value):
                return fmt
        return None


_SPECS = {
    Format.PNG: FormatSpec("image/png", "png", False, ("png",), keeps_alpha=True),
    Format.JPEG: FormatSpec("image/jpeg", "jpg", False, ("mjpeg",), lossy=True),
    Format.WEBP: FormatSpec("image/webp", "webp", True, ("libwebp", "libwebp_anim"),
                            keeps_alpha=True, lossy=True),
    Format.GIF: FormatSpec("image/gif", "gif", True, ("gif",), motion_by_default=True,
                           max_playback_fps=50.0),
    Format.MP4: FormatSpec("video/mp4", "mp4", True, ("libx264",), motion_by_default=True,
                           lossy=True),
}
assert _SPECS.keys() == set(Format), "every Format needs a row in _SPECS"


def animated_formats() -> list[Format]:
    return [fmt for fmt in Format if fmt.animates]


def required_encoders() -> tuple[str, ...]:
    """Every ffmpeg encoder some format needs, in format order, each once."""
    return tuple(dict.fromkeys(name for fmt in Format for name in fmt.encoders))
