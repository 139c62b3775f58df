"""JPEG frames into a lossy animated WebP: encoded by img2webp (libwebp's animation encoder,
as ffmpeg's libwebp_anim) with no ffmpeg run, and by ffmpeg whenever img2webp cannot make what
is asked; real img2webp and ffmpeg."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from oven.encode import EncodeError, EncodeRequest, EncoderSettings, Format, encode
from tests.encode.test_webp_frames import NO_FFMPEG, colour_frames, near, shown

pytestmark = pytest.mark.asyncio

NO_IMG2WEBP = EncoderSettings(img2webp_path="/nonexistent/img2webp")  # proves it never ran


async def test_jpeg_frames_become_a_lossy_animation_with_exact_durations_and_no_ffmpeg(
        tmp_path: Path) -> None:
    frames = colour_frames(tmp_path / "f", ["#ff0000", "#00ff00", "#0000ff"], ext="jpg")
    result = await encode(EncodeRequest(frames=frames, fps=30, format=Format.WEBP,
                                        out_path=tmp_path / "a.webp"), NO_FFMPEG)
    got = shown(result.path)
    # 3 frames at 30 fps last 100 ms: each duration is rounded on the running total.
    assert [ms for _, ms in got] == [33, 34, 33]
    # JPEG, then lossy WebP: a flat colour moves a little further than through one encode.
    assert all(near(rgb, want, within=12) for (rgb, _), want in zip(
        got, [(255, 0, 0), (0, 255, 0), (0, 0, 255)], strict=True))
    assert result.frames == 3 and result.content_type == "image/webp"
    with Image.open(result.path) as image:
        assert image.size == (64, 48)
    assert not list(tmp_path.glob(".*.partial"))


async def test_the_quality_asked_for_is_the_encode_s(tmp_path: Path) -> None:
    noisy = tmp_path / "f"
    noisy.mkdir()
    frames = []
    for k in range(4):
        path = noisy / f"frame-{k:05d}.jpg"
        Image.effect_noise((160, 120), 60 + k).convert("RGB").save(path, "JPEG", quality=95)
        frames.append(path)
    sizes = {}
    for quality in (10, 90):
        result = await encode(EncodeRequest(frames=frames, fps=10, format=Format.WEBP,
                                            quality=quality,
                                            out_path=tmp_path / f"q{quality}.webp"), NO_FFMPEG)
        sizes[quality] = result.size
    assert sizes[10] < sizes[90] / 2, sizes


@pytest.mark.parametrize("case", ["setting off", "lossless", "upscale", "png frames"])
async def test_what_img2webp_cannot_make_goes_to_ffmpeg(tmp_path: Path, case: str) -> None:
    frames = colour_frames(tmp_path / "f", ["#ff0000", "#00ff00"],
                           ext="png" if case == "png frames" else "jpg")
    settings = EncoderSettings(img2webp_path="/nonexistent/img2webp",
                               img2webp=case != "setting off", webp_lossless=case == "lossless")
    result = await encode(EncodeRequest(frames=frames, fps=10, format=Format.WEBP,
                                        upscale=2 if case == "upscale" else 1,
                                        out_path=tmp_path / "a.webp"), settings)
    assert len(shown(result.path)) == 2
    with Image.open(result.path) as image:
        assert image.size == ((128, 96) if case == "upscale" else (64, 48))


async def test_a_missing_img2webp_is_a_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    frames = colour_frames(tmp_path / "f", ["#ff0000", "#00ff00"], ext="jpg")
    with pytest.raises(EncodeError, match=r"cannot run img2webp at '/nonexistent/img2webp'.*"
                                          r"apt-get install webp"):
        await encode(EncodeRequest(frames=frames, fps=10, format=Format.WEBP,
                                   out_path=tmp_path / "a.webp"), NO_IMG2WEBP)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


async def test_frames_img2webp_cannot_read_fail_the_encode_and_leave_nothing(
        tmp_path: Path) -> None:
    frames = colour_frames(tmp_path / "f", ["#ff0000", "#00ff00"], ext="jpg")
    frames[1].write_bytes(b"not a jpeg")
    with pytest.raises(EncodeError, match="img2webp exited with code 1") as caught:
        await encode(EncodeRequest(frames=frames, fps=10, format=Format.WEBP,
                                   out_path=tmp_path / "a.webp"), NO_FFMPEG)
    assert not caught.value.transient
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
