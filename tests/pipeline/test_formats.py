"""Every output format through the whole pipeline: real Chromium, real ffmpeg, files checked."""

from __future__ import annotations

import io
import itertools
import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.oven_process import OvenProcess

from .grab_client import grab_bytes, metric


def frames_and_size(data: bytes) -> tuple[int, tuple[int, int]]:
    with Image.open(io.BytesIO(data)) as image:
        return getattr(image, "n_frames", 1), image.size


def test_animated_webp_has_exactly_the_requested_frames_at_the_requested_size(
        shared_oven: OvenProcess) -> None:
    view, data = grab_bytes(shared_oven, piece="anim", format="webp", width=320, height=180,
                            frames=16, fps=20)
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    assert frames_and_size(data) == (16, (320, 180))
    assert view["result"]["frames"] == 16
    assert view["result"]["content_type"] == "image/webp"


def test_gif_has_exactly_the_requested_frames_at_the_requested_size(
        shared_oven: OvenProcess) -> None:
    _, data = grab_bytes(shared_oven, piece="anim", format="gif", width=322, height=182,
                         frames=12, fps=20)
    assert data[:6] in (b"GIF89a", b"GIF87a")
    assert frames_and_size(data) == (12, (322, 182))


def test_mp4_has_the_requested_frame_count_and_duration_in_yuv420p(
        shared_oven: OvenProcess, tmp_path: Path) -> None:
    frames, fps = 16, 20
    canvas = {"outcome": "canvas"}
    before = metric(shared_oven, "oven_capture_canvas_frames_total", canvas)
    _, data = grab_bytes(shared_oven, piece="anim", format="mp4", width=324, height=184,
                         frames=frames, fps=fps)
    # anim is one canvas filling the page: its frames are the canvas's JPEG, not screenshots.
    assert metric(shared_oven, "oven_capture_canvas_frames_total", canvas) == before + 1
    path = tmp_path / "grab.mp4"
    path.write_bytes(data)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=nb_read_frames,pix_fmt,width,height,duration,codec_name", "-of", "json",
         str(path)],
        capture_output=True, check=True, timeout=30)
    stream = json.loads(probe.stdout)["streams"][0]
    assert stream["codec_name"] == "h264"
    assert int(stream["nb_read_frames"]) == frames
    assert (stream["width"], stream["height"]) == (324, 184)
    assert stream["pix_fmt"] == "yuv420p"
    assert float(stream["duration"]) == pytest.approx(frames / fps, abs=0.5 / fps)


@pytest.mark.parametrize(("fmt", "magic"), [("png", b"\x89PNG"), ("jpeg", b"\xff\xd8\xff")])
def test_stills_have_the_requested_size(shared_oven: OvenProcess, fmt: str,
                                        magic: bytes) -> None:
    view, data = grab_bytes(shared_oven, piece="still", format=fmt, width=300, height=200)
    assert data.startswith(magic)
    assert frames_and_size(data) == (1, (300, 200))
    assert view["result"]["content_type"] == f"image/{fmt}"


def test_density_two_doubles_the_pixel_size(shared_oven: OvenProcess) -> None:
    _, data = grab_bytes(shared_oven, piece="still", format="png", width=150, height=100,
                         density=2)
    assert frames_and_size(data) == (1, (300, 200))


def painted_time_us(frame: Image.Image) -> int:
    """The clock piece's 32 bits: 8x8 px blocks along the top, MSB first, white = 1."""
    rgb = frame.convert("RGB")
    bits = 0
    for i in range(32):
        red, green, blue = rgb.getpixel((i * 8 + 4, 4))  # type: ignore[misc]
        assert min(red, green, blue) > 200 or max(red, green, blue) < 55, (i, red, green, blue)
        bits = (bits << 1) | (red > 128)
    return bits


def test_virtual_clock_advances_exactly_one_frame_interval_per_frame(
        shared_oven: OvenProcess) -> None:
    frames, fps = 8, 10
    _, data = grab_bytes(shared_oven, piece="clock", format="webp", width=320, height=180,
                         frames=frames, fps=fps, clock="virtual")
    times = []
    with Image.open(io.BytesIO(data)) as image:
        assert getattr(image, "n_frames", 1) == frames
        for index in range(frames):
            image.seek(index)
            times.append(painted_time_us(image))
    steps = [b - a for a, b in itertools.pairwise(times)]
    assert steps == [round(1_000_000 / fps)] * (frames - 1), times
