"""Chromium's JPEG frames make valid lossy outputs, and a JPEG still is Chromium's JPEG itself."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from oven.capture import Browser, CaptureRequest, capture, piece_url
from oven.encode import EncodeRequest, EncoderSettings, Format, encode, frame_format_for

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def jpeg_frames(browser: Browser, out: Path, frames: int) -> list[Path]:
    request = CaptureRequest(url=piece_url("anim"), width=320, height=180, frames=frames,
                             fps=20, clock="virtual", frame_format="jpeg")
    result = await capture(browser, request, out)
    assert [p.suffix for p in result.frames] == [".jpg"] * frames
    return result.frames


async def test_an_animated_webp_of_jpeg_frames_has_every_frame_at_full_size(
    browser: Browser, tmp_path: Path
) -> None:
    settings = EncoderSettings(canvas_frames=False)  # else the canvas's WebP (test_canvas_frames)
    assert frame_format_for(Format.WEBP, settings) == "jpeg"
    frames = await jpeg_frames(browser, tmp_path / "frames", 16)
    result = await encode(EncodeRequest(frames=frames, fps=20, format=Format.WEBP,
                                        out_path=tmp_path / "a.webp"), settings)
    with Image.open(result.path) as image:
        assert (image.format, image.size, getattr(image, "n_frames", 1)) == (
            "WEBP", (320, 180), 16)
        assert image.info.get("loop") == 0


async def test_an_mp4_of_jpeg_frames_has_the_frame_count(browser: Browser, tmp_path: Path
                                                         ) -> None:
    settings = EncoderSettings()
    # An animation asks for the canvas as JPEG where it is the whole picture (the same bytes
    # as the screenshots, test_canvas_frames), a still for a screenshot.
    assert frame_format_for(Format.MP4, settings) == "canvas-jpeg"
    assert frame_format_for(Format.MP4, settings, still=True) == "jpeg"
    assert frame_format_for(Format.MP4, EncoderSettings(canvas_frames=False)) == "jpeg"
    frames = await jpeg_frames(browser, tmp_path / "frames", 10)
    result = await encode(EncodeRequest(frames=frames, fps=20, format=Format.MP4,
                                        out_path=tmp_path / "a.mp4"), settings)
    done = subprocess.run(
        [settings.ffprobe_path, "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=width,height,nb_read_frames", "-of", "json", str(result.path)],
        capture_output=True, check=True, timeout=30)
    assert json.loads(done.stdout)["streams"][0] == {
        "width": 320, "height": 180, "nb_read_frames": "10"}


async def test_a_jpeg_still_is_chromiums_jpeg_byte_for_byte_with_no_ffmpeg(
    browser: Browser, tmp_path: Path
) -> None:
    # An ffmpeg path that does not exist: the encode would fail if it tried to run one.
    settings = EncoderSettings(ffmpeg_path=str(tmp_path / "no-ffmpeg"))
    assert frame_format_for(Format.JPEG, settings) == "jpeg"
    (frame,) = await jpeg_frames(browser, tmp_path / "frames", 1)
    result = await encode(EncodeRequest(frames=[frame], fps=1, format=Format.JPEG,
                                        out_path=tmp_path / "still.jpg"), settings)
    assert result.path.read_bytes() == frame.read_bytes()
    with Image.open(result.path) as image:
        assert (image.format, image.size) == ("JPEG", (320, 180))
    assert shutil.which(settings.ffmpeg_path) is None
