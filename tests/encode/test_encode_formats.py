"""Each format from real frames through the real ffmpeg, checked by reading the output back."""

from __future__ import annotations

import json
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from oven.encode import EncodeRequest, EncoderSettings, Format, encode

FrameMaker = Callable[..., list[Path]]




def ffprobe_video(path: Path, settings: EncoderSettings) -> dict[str, object]:
    done = subprocess.run(
        [settings.ffprobe_path, "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=codec_name,width,height,pix_fmt,nb_read_frames",
         "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True, check=True, timeout=30,
    )
    info = json.loads(done.stdout)
    return {**info["streams"][0], "duration": float(info["format"]["duration"])}


def frame_count(image: Image.Image) -> int:
    # n_frames exists only on multi-frame plugins (GIF, WebP), so typeshed does not know it.
    return int(getattr(image, "n_frames", 1))


def top_level_boxes(path: Path) -> list[str]:
    boxes = []
    with path.open("rb") as mp4:
        while header := mp4.read(8):
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                size = struct.unpack(">Q", mp4.read(8))[0] - 8
            boxes.append(kind.decode("ascii"))
            mp4.seek(size - 8, 1)
    return boxes


async def test_animated_webp_has_every_frame_at_full_size_and_loops_forever(
    frames_640: list[Path], settings: EncoderSettings, tmp_path: Path
) -> None:
    out = tmp_path / "anim.webp"
    result = await encode(
        EncodeRequest(frames=frames_640, fps=16, format=Format.WEBP, out_path=out), settings
    )
    assert (result.path, result.content_type, result.frames) == (out, "image/webp", 16)
    assert result.size == out.stat().st_size > 0
    with Image.open(out) as image:
        assert image.format == "WEBP"
        assert frame_count(image) == 16
        assert image.size == (640, 360)
        assert image.info["loop"] == 0
    # webpmux (Debian package webp) is a test dependency `make test` installs: a second reader
    # of the container, independent of Pillow.
    info = subprocess.run(["webpmux", "-info", str(out)], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    assert "Number of frames: 16" in info.stdout


async def test_single_frame_webp_is_a_still_image(
    frames_640: list[Path], settings: EncoderSettings, tmp_path: Path
) -> None:
    out = tmp_path / "still.webp"
    result = await encode(
        EncodeRequest(frames=frames_640[:1], fps=16, format=Format.WEBP, out_path=out), settings
    )
    assert result.frames == 1
    with Image.open(out) as image:
        assert (image.format, image.size, frame_count(image)) == ("WEBP", (640, 360), 1)


async def test_gif_has_every_frame_and_loops_forever(
    frames_640: list[Path], settings: EncoderSettings, tmp_path: Path
) -> None:
    out = tmp_path / "anim.gif"
    result = await encode(
        EncodeRequest(frames=frames_640, fps=16, format=Format.GIF, out_path=out), settings
    )
    assert (result.content_type, result.frames) == ("image/gif", 16)
    with Image.open(out) as image:
        assert image.format == "GIF"
        assert frame_count(image) == 16
        assert image.size == (640, 360)
        assert image.info["loop"] == 0


async def test_mp4_has_the_frame_count_and_duration_and_starts_fast(
    frames_640: list[Path], settings: EncoderSettings, tmp_path: Path
) -> None:
    out = tmp_path / "anim.mp4"
    result = await encode(
        EncodeRequest(frames=frames_640, fps=16, format=Format.MP4, out_path=out), settings
    )
    assert (result.content_type, result.frames) == ("video/mp4", 16)
    info = ffprobe_video(out, settings)
    assert info["codec_name"] == "h264"
    assert info["pix_fmt"] == "yuv420p"
    assert (info["width"], info["height"]) == (640, 360)
    assert info["nb_read_frames"] == "16"
    assert info["duration"] == pytest.approx(16 / 16, abs=0.01)
    boxes = top_level_boxes(out)
    assert boxes.index("moov") < boxes.index("mdat")


async def test_mp4_from_odd_sized_frames_is_padded_to_even_dimensions(
    frames_odd: list[Path], settings: EncoderSettings, tmp_path: Path
) -> None:
    out = tmp_path / "odd.mp4"
    await encode(
        EncodeRequest(frames=frames_odd[:10], fps=25, format=Format.MP4, out_path=out), settings
    )
    info = ffprobe_video(out, settings)
    assert (info["width"], info["height"]) == (642, 362)
    assert info["pix_fmt"] == "yuv420p"
    assert info["nb_read_frames"] == "10"
    assert info["duration"] == pytest.approx(10 / 25, abs=0.01)


@pytest.mark.parametrize(
    ("fmt", "pillow_format", "content_type"),
    [(Format.PNG, "PNG", "image/png"), (Format.JPEG, "JPEG", "image/jpeg")],
)
async def test_still_formats_keep_the_frame_size_and_type(
    frames_odd: list[Path],
    settings: EncoderSettings,
    tmp_path: Path,
    fmt: Format,
    pillow_format: str,
    content_type: str,
) -> None:
    out = tmp_path / f"still.{fmt.extension}"
    result = await encode(
        EncodeRequest(frames=frames_odd[5:6], fps=1, format=fmt, out_path=out), settings
    )
    assert (result.content_type, result.frames, result.size) == (
        content_type, 1, out.stat().st_size
    )
    with Image.open(out) as image:
        assert (image.format, image.size) == (pillow_format, (641, 361))


async def test_png_still_is_the_frame_pixel_for_pixel(
    frames_odd: list[Path], settings: EncoderSettings, tmp_path: Path
) -> None:
    out = tmp_path / "still.png"
    await encode(
        EncodeRequest(frames=frames_odd[3:4], fps=1, format=Format.PNG, out_path=out), settings
    )
    with Image.open(out) as encoded, Image.open(frames_odd[3]) as source:
        difference = ImageChops.difference(encoded.convert("RGB"), source.convert("RGB"))
        assert difference.getbbox() is None


async def test_jpeg_frames_are_accepted_as_input(
    make_frames: FrameMaker, settings: EncoderSettings, tmp_path: Path
) -> None:
    frames = make_frames(tmp_path / "job", count=8, ext="jpg")
    webp = await encode(
        EncodeRequest(frames=frames, fps=8, format=Format.WEBP, out_path=tmp_path / "a.webp"),
        settings,
    )
    mp4 = await encode(
        EncodeRequest(frames=frames, fps=8, format=Format.MP4, out_path=tmp_path / "a.mp4"),
        settings,
    )
    with Image.open(webp.path) as image:
        assert (frame_count(image), image.size) == (8, (640, 360))
    assert ffprobe_video(mp4.path, settings)["nb_read_frames"] == "8"


async def test_upscale_two_doubles_the_size_with_nearest_neighbour(
    frames_odd: list[Path], settings: EncoderSettings, tmp_path: Path
) -> None:
    out = tmp_path / "big.png"
    await encode(
        EncodeRequest(frames=frames_odd[:1], fps=1, format=Format.PNG, out_path=out, upscale=2),
        settings,
    )
    with Image.open(out) as encoded, Image.open(frames_odd[0]) as source:
        assert encoded.size == (1282, 722)
        expected = source.convert("RGB").resize((1282, 722), Image.Resampling.NEAREST)
        # Exact equality: any smoothing would blur the 1-px checkerboard in the corner.
        assert ImageChops.difference(encoded.convert("RGB"), expected).getbbox() is None


async def test_upscale_applies_to_animations_too(
    frames_640: list[Path], settings: EncoderSettings, tmp_path: Path
) -> None:
    out = tmp_path / "big.gif"
    await encode(
        EncodeRequest(frames=frames_640[:4], fps=4, format=Format.GIF, out_path=out, upscale=2),
        settings,
    )
    with Image.open(out) as image:
        assert (frame_count(image), image.size) == (4, (1280, 720))


async def test_frames_numbered_from_a_later_index_are_read_from_that_index(
    frames_640: list[Path], settings: EncoderSettings, tmp_path: Path
) -> None:
    out = tmp_path / "tail.gif"
    await encode(
        EncodeRequest(frames=frames_640[10:], fps=16, format=Format.GIF, out_path=out), settings
    )
    with Image.open(out) as image:
        assert frame_count(image) == 6
