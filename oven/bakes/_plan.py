"""From an unpacked tape to what ffmpeg is asked for: fps (and where it came from), size limits."""

from __future__ import annotations

from dataclasses import dataclass

from oven.bakes._archive import Tape
from oven.bakes._errors import BakeRefused
from oven.bakes._settings import BakeSettings


@dataclass(frozen=True)
class BakePlan:
    fps: float
    fps_source: str  # "soundtrack" | "timing" | "default"
    duration_s: float
    scale: int
    out_width: int
    out_height: int


def choose_fps(tape: Tape, settings: BakeSettings) -> tuple[float, str]:
    """The soundtrack's length wins (picture and sound end together), then timing.json."""
    if tape.audio_seconds is not None:
        return tape.frames / tape.audio_seconds, "soundtrack"
    if tape.durations_ms is not None:
        return tape.frames * 1000.0 / sum(tape.durations_ms), "timing"
    return settings.default_fps, "default"


def plan_bake(tape: Tape, scale: int, settings: BakeSettings) -> BakePlan:
    """Checks the tape against the fps, duration, scale and output-size limits."""
    if not 1 <= scale <= settings.max_scale:
        raise BakeRefused(f"scale: must be an integer from 1 to {settings.max_scale} "
                          "(bakes.max_scale)", code="invalid")
    fps, source = choose_fps(tape, settings)
    if not settings.min_fps <= fps <= settings.max_fps:
        raise BakeRefused(
            f"fps: {tape.frames} frames over the {source} come to {fps:.3g} fps, outside "
            f"bakes.min_fps..max_fps ({settings.min_fps:g}..{settings.max_fps:g})",
            code="bad_fps")
    duration = tape.frames / fps
    if duration > settings.max_duration_s:
        raise BakeRefused(f"duration: {duration:.1f} s is over bakes.max_duration_s "
                          f"({settings.max_duration_s:g})", code="too_long")
    # Output as ffmpeg makes it: upscaled, then padded to even sides for yuv420p.
    width = tape.width * scale + (tape.width * scale) % 2
    height = tape.height * scale + (tape.height * scale) % 2
    if width * height > settings.max_output_pixels:
        raise BakeRefused(f"scale: {tape.width}x{tape.height} at scale {scale} is "
                          f"{width}x{height}, over bakes.max_output_pixels "
                          f"({settings.max_output_pixels})", code="frame_too_large")
    return BakePlan(fps=fps, fps_source=source, duration_s=duration, scale=scale,
                    out_width=width, out_height=height)
