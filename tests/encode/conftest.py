"""Frames made with Pillow in tmp dirs, and a check that no ffmpeg outlives a test."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from PIL import Image, ImageDraw

from oven.encode import EncoderSettings, running_pids

FrameMaker = Callable[..., list[Path]]


def draw_frame(index: int, size: tuple[int, int]) -> Image.Image:
    """A dark background, a disc that moves with `index`, and a 1-px checkerboard corner
    (any smoothing filter would blur it, so nearest-neighbour scaling is detectable)."""
    width, height = size
    image = Image.new("RGB", size, (20, 30, 60))
    draw = ImageDraw.Draw(image)
    x = 10 + index * (width - 140) // 16
    draw.ellipse((x, height // 3, x + 120, height // 3 + 120), fill=(240, 120, 40))
    draw.rectangle((0, height - 40, width, height), fill=(index * 15 % 256, 200, 100))
    for y in range(16):
        for x in range(16):
            if (x + y) % 2:
                image.putpixel((x, y), (255, 255, 255))
    return image


def write_frames(
    job_dir: Path, count: int = 16, size: tuple[int, int] = (640, 360), ext: str = "png"
) -> list[Path]:
    job_dir.mkdir(parents=True, exist_ok=True)
    frames = []
    for index in range(count):
        path = job_dir / f"frame-{index:05d}.{ext}"
        draw_frame(index, size).save(path, quality=95)
        frames.append(path)
    return frames


@pytest.fixture(scope="session")
def frames_640(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """16 frames 640x360, shared read-only by the tests (outputs go to each test's tmp_path)."""
    return write_frames(tmp_path_factory.mktemp("frames-640"))


@pytest.fixture(scope="session")
def frames_odd(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_frames(tmp_path_factory.mktemp("frames-odd"), size=(641, 361))


@pytest.fixture
def make_frames() -> FrameMaker:
    """write_frames(job_dir, count=16, size=(640, 360), ext="png") -> the frame paths."""
    return write_frames


@pytest.fixture
def settings() -> EncoderSettings:
    assert shutil.which("ffmpeg"), "these tests run the real ffmpeg"
    return EncoderSettings()


def ffmpeg_children() -> list[psutil.Process]:
    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "ffmpeg" in child.name() and child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.fixture(autouse=True)
def no_ffmpeg_left_behind() -> Iterator[None]:
    yield
    assert running_pids() == frozenset()
    assert ffmpeg_children() == []
