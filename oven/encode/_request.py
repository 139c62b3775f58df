"""What an encode is asked to do and what it answers: the request and the result."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._format import Format

# The capture step writes frames as frame-00000.png (or .jpg, .webp), numbered without gaps,
# so ffmpeg's image2 demuxer can read them straight from the job dir with one pattern.
FRAME_NAME = re.compile(r"frame-(?P<index>\d{5,})\.(?P<ext>png|jpg|jpeg|webp)")

# An art pixel at most 16x16 output pixels: past that a 1920 px output is a page of fewer than
# 120 CSS px, and ffmpeg's scaler is exact at any integer factor, so the bound is one of use.
MAX_UPSCALE = 16


class EncodeRequest(BaseModel):
    """Frames already on disk in one job dir, and where the encoded file should go."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    frames: list[Path] = Field(min_length=1,
                               description="frame-NNNNN.png|jpg|webp files, in order.")
    fps: float = Field(gt=0, le=240, description="Frames per second of the animation.")
    format: Format
    out_path: Path
    upscale: int = Field(1, ge=1, le=MAX_UPSCALE, description="Nearest-neighbour scale factor.")
    quality: int | None = Field(None, ge=1, le=100,
                                description="1..100 for JPEG, WebP and MP4; else the settings'.")
    offsets: list[tuple[int, int]] = Field(
        default_factory=list, description="WebP frames only: where each frame goes in the "
        "picture (a canvas frame may be the box that changed); [] when every frame is whole.")

    @model_validator(mode="after")
    def _frames_form_one_sequence(self) -> EncodeRequest:
        if not self.format.animates and len(self.frames) != 1:
            raise ValueError(f"{self.format} is a still format: give exactly one frame, "
                             f"not {len(self.frames)}")
        first = self.frames[0]
        start = frame_index(first)
        for offset, frame in enumerate(self.frames):
            if frame.parent != first.parent or frame.suffix != first.suffix:
                raise ValueError(f"frames must share one dir and extension: {first} vs {frame}")
            if frame_index(frame) != start + offset:
                raise ValueError(f"frames must be numbered without gaps: {frame.name} "
                                 f"follows frame {start + offset - 1}")
        return self

    @model_validator(mode="after")
    def _offsets_place_webp_frames(self) -> EncodeRequest:
        if not self.offsets:
            return self
        if self.frames[0].suffix != ".webp" or len(self.offsets) != len(self.frames):
            raise ValueError("offsets: one per frame, and only for .webp frames")
        if self.offsets[0] != (0, 0) or any(
                x < 0 or y < 0 or x % 2 or y % 2 for x, y in self.offsets):
            raise ValueError("offsets: even and not negative, the first frame at (0, 0)")
        if any(o != (0, 0) for o in self.offsets) and (
                self.format is not Format.WEBP or self.upscale != 1):
            raise ValueError("offsets: frames that are boxes make only a WebP at their size")
        return self

    @property
    def still(self) -> bool:
        """One picture out: a single frame, whatever the format."""
        return len(self.frames) == 1


def frame_index(frame: Path) -> int:
    """The number in `frame-00042.png`; ValueError for any other name."""
    match = FRAME_NAME.fullmatch(frame.name)
    if match is None:
        raise ValueError(f"frame file {frame.name!r} is not named frame-NNNNN.png, .jpg or .webp")
    digits = match["index"]
    if len(digits) > 5 and digits.startswith("0"):
        raise ValueError(f"frame file {frame.name!r} has more zero padding than %05d")
    return int(digits)


@dataclass(frozen=True, slots=True)
class EncodeResult:
    path: Path
    size: int
    content_type: str
    frames: int
    seconds: float
