"""The playback rate is written into each container's frame timing: an output of n frames
encoded at fps lasts n / fps, to the container's own unit (GIF: 1 cs; WebP: 1 ms; MP4: its
timebase), however long the animation and whatever the rate.

GIF gave its last frame the previous frame's delay (fps 15: 0.79 s for 12 frames; 7.5: 1.61 s).
"""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest
from PIL import Image

from oven.encode import EncodeRequest, EncoderSettings, Format, encode

FrameMaker = Callable[..., list[Path]]

RATES = [7.5, 12.5, 15, 24, 30]


def ffprobe_duration(path: Path, settings: EncoderSettings) -> float:
    done = subprocess.run(
        [settings.ffprobe_path, "-v", "error", "-show_entries", "format=duration", "-of", "json",
         str(path)], capture_output=True, check=True, timeout=30)
    return float(json.loads(done.stdout)["format"]["duration"])


def webp_frame_ms(path: Path) -> list[int]:
    """Each frame's duration as the file says it (ffmpeg 5.1 cannot read animated WebP)."""
    done = subprocess.run(["webpmux", "-info", str(path)], capture_output=True, check=True,
                          text=True, timeout=30)
    lines = done.stdout.splitlines()
    header = next(k for k, line in enumerate(lines) if line.lstrip().startswith("No.:"))
    column = lines[header].split().index("duration")
    return [int(line.split()[column]) for line in lines[header + 1:] if line.strip()]


def gif_frame_cs(path: Path) -> list[int]:
    with Image.open(path) as image:
        delays = []
        for k in range(getattr(image, "n_frames", 1)):
            image.seek(k)
            delays.append(int(image.info["duration"]) // 10)
    return delays


def nearest(seconds: Fraction, unit: int) -> int:
    """seconds in units of 1/unit s, rounded half up (as ffmpeg rescales timestamps)."""
    return math.floor(seconds * unit + Fraction(1, 2))


@pytest.mark.parametrize("fps", RATES)
async def test_a_gif_lasts_its_frames_over_the_rate_to_the_centisecond(
        make_frames: FrameMaker, settings: EncoderSettings, tmp_path: Path,
        fps: float) -> None:
    frames = make_frames(tmp_path / "f", count=12, size=(64, 36))
    out = tmp_path / "out.gif"
    await encode(EncodeRequest(frames=frames, fps=fps, format=Format.GIF, out_path=out),
                 settings)
    delays = gif_frame_cs(out)
    assert len(delays) == 12
    assert sum(delays) == nearest(Fraction(12) / Fraction(fps), 100), delays
    assert ffprobe_duration(out, settings) == pytest.approx(sum(delays) / 100)
    # Each frame starts where the rate puts it: the rounding does not pile up.
    starts = [sum(delays[:k]) for k in range(12)]
    assert starts == [nearest(Fraction(k) / Fraction(fps), 100) for k in range(12)]


@pytest.mark.parametrize("fps", RATES)
async def test_an_animated_webp_lasts_its_frames_over_the_rate_to_the_millisecond(
        make_frames: FrameMaker, settings: EncoderSettings, tmp_path: Path,
        fps: float) -> None:
    frames = make_frames(tmp_path / "f", count=12, size=(64, 36))
    out = tmp_path / "out.webp"
    await encode(EncodeRequest(frames=frames, fps=fps, format=Format.WEBP, out_path=out),
                 settings)
    durations = webp_frame_ms(out)
    assert len(durations) == 12
    # libwebp_anim's last frame is the rate's period cut to the millisecond: 1 ms at most.
    assert abs(sum(durations) - 12_000 / fps) <= 1, durations


@pytest.mark.parametrize("fps", RATES)
async def test_an_mp4_lasts_its_frames_over_the_rate(
        make_frames: FrameMaker, settings: EncoderSettings, tmp_path: Path,
        fps: float) -> None:
    frames = make_frames(tmp_path / "f", count=12, size=(64, 36))
    out = tmp_path / "out.mp4"
    await encode(EncodeRequest(frames=frames, fps=fps, format=Format.MP4, out_path=out),
                 settings)
    assert ffprobe_duration(out, settings) == pytest.approx(12 / fps, abs=1e-3)


async def test_a_long_time_lapse_gif_keeps_its_length(
        make_frames: FrameMaker, settings: EncoderSettings, tmp_path: Path) -> None:
    frames = make_frames(tmp_path / "f", count=150, size=(32, 18))
    out = tmp_path / "out.gif"
    await encode(EncodeRequest(frames=frames, fps=15, format=Format.GIF, out_path=out),
                 settings)
    assert sum(gif_frame_cs(out)) == 1000
