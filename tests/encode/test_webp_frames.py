"""WebP frames (a piece's canvas pictures) into WebP outputs: assembled by webpmux as they are,
a still copied as it is, never a second encode; real webpmux and ffmpeg."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from oven.encode import EncodeError, EncodeRequest, EncoderSettings, Format, encode

pytestmark = pytest.mark.asyncio

NO_FFMPEG = EncoderSettings(ffmpeg_path="/nonexistent/ffmpeg")  # proves ffmpeg never ran


# Pillow's format and quality for each frame suffix (PNG takes no quality).
_SAVED_AS = {"webp": ("WEBP", 80), "jpg": ("JPEG", 90), "png": ("PNG", 0)}


def colour_frames(directory: Path, colours: list[str], size: tuple[int, int] = (64, 48), *,
                  ext: str = "webp") -> list[Path]:
    """One flat-colour frame per colour, numbered as a capture writes them."""
    directory.mkdir(parents=True, exist_ok=True)
    kind, quality = _SAVED_AS[ext]
    paths = []
    for k, colour in enumerate(colours):
        path = directory / f"frame-{k:05d}.{ext}"
        Image.new("RGB", size, colour).save(path, kind, quality=quality)
        paths.append(path)
    return paths


def shown(path: Path) -> list[tuple[tuple[int, int, int], int]]:
    """Each frame of an animated WebP: its middle pixel's colour and its duration in ms."""
    out = []
    with Image.open(path) as image:
        assert image.format == "WEBP" and getattr(image, "is_animated", False)
        assert image.info.get("loop") == 0
        for k in range(image.n_frames):
            image.seek(k)
            rgb = image.convert("RGB").getpixel((image.width // 2, image.height // 2))
            out.append((rgb, image.info["duration"]))
    return out


def near(a: tuple[int, int, int], b: tuple[int, int, int], within: int = 8) -> bool:
    return all(abs(x - y) <= within for x, y in zip(a, b, strict=True))


async def test_webp_frames_are_muxed_into_an_animation_with_exact_durations(
        tmp_path: Path) -> None:
    colours = ["#ff0000", "#00ff00", "#0000ff"]
    frames = colour_frames(tmp_path / "f", colours)
    result = await encode(EncodeRequest(frames=frames, fps=30, format=Format.WEBP,
                                        out_path=tmp_path / "a.webp"), NO_FFMPEG)
    got = shown(result.path)
    # 3 frames at 30 fps last 100 ms: each duration is rounded on the running total.
    assert [ms for _, ms in got] == [33, 34, 33]
    assert all(near(rgb, want) for (rgb, _), want in zip(
        got, [(255, 0, 0), (0, 255, 0), (0, 0, 255)], strict=True))
    assert result.frames == 3
    # The frames' own bytes are in the file: nothing was encoded again.
    data = result.path.read_bytes()
    for frame in frames:
        vp8 = frame.read_bytes()[12:]  # the frame's chunks after its RIFF header
        assert vp8 in data


async def test_identical_neighbours_become_one_frame_that_stays_up_for_their_time(
        tmp_path: Path) -> None:
    frames = colour_frames(tmp_path / "f", ["#f00", "#f00", "#f00", "#0f0", "#0f0", "#00f"])
    result = await encode(EncodeRequest(frames=frames, fps=10, format=Format.WEBP,
                                        out_path=tmp_path / "a.webp"), NO_FFMPEG)
    assert [ms for _, ms in shown(result.path)] == [300, 200, 100]


async def test_an_unchanging_animation_stays_an_animation_of_its_length(tmp_path: Path) -> None:
    frames = colour_frames(tmp_path / "f", ["#888"] * 16)
    result = await encode(EncodeRequest(frames=frames, fps=15, format=Format.WEBP,
                                        out_path=tmp_path / "a.webp"), NO_FFMPEG)
    durations = [ms for _, ms in shown(result.path)]
    assert len(durations) == 2
    assert sum(durations) == round(16 * 1000 / 15)


async def test_a_webp_still_of_a_webp_frame_is_that_frame_byte_for_byte(tmp_path: Path) -> None:
    (frame,) = colour_frames(tmp_path / "f", ["#123456"])
    result = await encode(EncodeRequest(frames=[frame], fps=1, format=Format.WEBP,
                                        out_path=tmp_path / "s.webp"), NO_FFMPEG)
    assert result.path.read_bytes() == frame.read_bytes()


async def test_a_damaged_webp_frame_fails_the_encode_with_the_tools_words(tmp_path: Path
                                                                         ) -> None:
    frames = colour_frames(tmp_path / "f", ["#f00", "#0f0"])
    frames[1].write_bytes(frames[1].read_bytes()[:40])
    with pytest.raises(EncodeError, match="webpmux exited with code") as caught:
        await encode(EncodeRequest(frames=frames, fps=10, format=Format.WEBP,
                                   out_path=tmp_path / "a.webp"), NO_FFMPEG)
    assert not caught.value.transient
    assert list(tmp_path.glob("*.webp")) == list(tmp_path.glob(".*partial")) == []
    # A still of a damaged frame is not copied: it goes to ffmpeg, here one that is missing.
    with pytest.raises(EncodeError, match="cannot run ffmpeg"):
        await encode(EncodeRequest(frames=[frames[1]], fps=1, format=Format.WEBP,
                                   out_path=tmp_path / "s.webp"), NO_FFMPEG)


async def test_a_missing_webpmux_says_what_to_install(tmp_path: Path) -> None:
    frames = colour_frames(tmp_path / "f", ["#f00", "#0f0"])
    settings = EncoderSettings(webpmux_path=str(tmp_path / "no-webpmux"))
    with pytest.raises(EncodeError, match=r"cannot run webpmux .*apt-get install webp"):
        await encode(EncodeRequest(frames=frames, fps=10, format=Format.WEBP,
                                   out_path=tmp_path / "a.webp"), settings)


@pytest.mark.parametrize(("fmt", "upscale"), [(Format.WEBP, 2), (Format.GIF, 1), (Format.MP4, 1)])
async def test_webp_frames_for_anything_else_go_to_ffmpeg_which_reads_them(
        tmp_path: Path, fmt: Format, upscale: int) -> None:
    frames = colour_frames(tmp_path / "f", ["#f00", "#0f0", "#00f", "#fff"])
    result = await encode(EncodeRequest(frames=frames, fps=10, format=fmt, upscale=upscale,
                                        out_path=tmp_path / f"a.{fmt.extension}"),
                          EncoderSettings())
    assert result.size > 0
    if fmt is not Format.MP4:
        with Image.open(result.path) as image:
            assert image.size == (64 * upscale, 48 * upscale)
            assert image.n_frames == 4


async def test_boxes_at_offsets_are_laid_over_the_frame_before(tmp_path: Path) -> None:
    # A whole grey frame, then a red 16x8 box at (10, 20), then a blue one at (40, 30).
    frames = colour_frames(tmp_path / "f", ["#808080"])
    for k, colour in ((1, "#ff0000"), (2, "#0000ff")):
        Image.new("RGB", (16, 8), colour).save(tmp_path / "f" / f"frame-{k:05d}.webp", "WEBP")
        frames.append(tmp_path / "f" / f"frame-{k:05d}.webp")
    result = await encode(EncodeRequest(frames=frames, fps=10, format=Format.WEBP,
                                        offsets=[(0, 0), (10, 20), (40, 30)],
                                        out_path=tmp_path / "a.webp"), NO_FFMPEG)
    with Image.open(result.path) as image:
        assert image.size == (64, 48) and image.n_frames == 3
        image.seek(2)
        last = image.convert("RGB")
    assert near(last.getpixel((17, 23)), (255, 0, 0))  # the first box stays
    assert near(last.getpixel((47, 33)), (0, 0, 255))
    assert near(last.getpixel((2, 2)), (128, 128, 128))


async def test_the_same_box_at_another_place_is_not_merged(tmp_path: Path) -> None:
    frames = colour_frames(tmp_path / "f", ["#808080"])
    for k in (1, 2):
        Image.new("RGB", (8, 8), "#fff").save(tmp_path / "f" / f"frame-{k:05d}.webp", "WEBP")
        frames.append(tmp_path / "f" / f"frame-{k:05d}.webp")
    moved = await encode(EncodeRequest(frames=frames, fps=10, format=Format.WEBP,
                                       offsets=[(0, 0), (0, 0), (20, 20)],
                                       out_path=tmp_path / "moved.webp"), NO_FFMPEG)
    assert [ms for _, ms in shown(moved.path)] == [100, 100, 100]
    stayed = await encode(EncodeRequest(frames=frames, fps=10, format=Format.WEBP,
                                        offsets=[(0, 0), (20, 20), (20, 20)],
                                        out_path=tmp_path / "stayed.webp"), NO_FFMPEG)
    assert [ms for _, ms in shown(stayed.path)] == [100, 200]


@pytest.mark.parametrize(("offsets", "fmt", "upscale"), [
    ([(0, 0), (3, 0)], Format.WEBP, 1),  # odd: WebP frame offsets are even
    ([(0, 0), (-2, 0)], Format.WEBP, 1),
    ([(2, 2), (0, 0)], Format.WEBP, 1),  # the first frame is whole
    ([(0, 0)], Format.WEBP, 1),  # one per frame
    ([(0, 0), (2, 2)], Format.GIF, 1),  # boxes make only a WebP
    ([(0, 0), (2, 2)], Format.WEBP, 2),  # at its size
])
async def test_offsets_that_cannot_place_frames_are_refused(
        tmp_path: Path, offsets: list[tuple[int, int]], fmt: Format, upscale: int) -> None:
    frames = colour_frames(tmp_path / "f", ["#f00", "#0f0"])
    with pytest.raises(ValueError, match="offsets"):
        EncodeRequest(frames=frames, fps=10, format=fmt, upscale=upscale, offsets=offsets,
                      out_path=tmp_path / "a.webp")
