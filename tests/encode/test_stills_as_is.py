"""A still whose frame already is the file asked for is written through; ffmpeg runs otherwise.

ffmpeg is a stand-in that notes each run in a file and then runs the real ffmpeg, so a test
sees whether an encode started one (ffmpeg lives too briefly to be seen from outside).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from oven.encode import EncodeError, EncodeRequest, EncoderSettings, Format, encode

FrameMaker = Callable[..., list[Path]]


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    return tmp_path / "ffmpeg-runs.txt"


@pytest.fixture
def noting(tmp_path: Path, runs: Path) -> EncoderSettings:
    shim = tmp_path / "ffmpeg"
    shim.write_text(f'#!/bin/sh\necho run >> "{runs}"\nexec "{shutil.which("ffmpeg")}" "$@"\n')
    shim.chmod(0o755)
    return EncoderSettings(ffmpeg_path=str(shim))


def ffmpeg_runs(runs: Path) -> int:
    return len(runs.read_text().split()) if runs.exists() else 0


@pytest.mark.parametrize(("ext", "fmt"), [("png", Format.PNG), ("jpg", Format.JPEG)])
async def test_a_still_of_the_frames_own_format_is_the_frames_bytes_and_runs_no_ffmpeg(
    make_frames: FrameMaker, noting: EncoderSettings, runs: Path, tmp_path: Path,
    ext: str, fmt: Format,
) -> None:
    (frame,) = make_frames(tmp_path / "job", count=1, size=(641, 361), ext=ext)
    out = tmp_path / f"still.{fmt.extension}"
    result = await encode(
        EncodeRequest(frames=[frame], fps=1, format=fmt, out_path=out), noting
    )
    assert ffmpeg_runs(runs) == 0
    assert out.read_bytes() == frame.read_bytes()
    assert (result.path, result.size, result.frames, result.content_type) == (
        out, frame.stat().st_size, 1, fmt.content_type)
    assert frame.exists()  # the frame is the caller's: copied, not moved
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize(
    ("ext", "fmt", "upscale", "pillow_format", "size"),
    [
        ("png", Format.PNG, 2, "PNG", (128, 72)),  # a resize
        ("png", Format.JPEG, 1, "JPEG", (64, 36)),  # another format
        ("jpg", Format.PNG, 1, "PNG", (64, 36)),
        ("jpg", Format.JPEG, 3, "JPEG", (192, 108)),
        ("png", Format.WEBP, 1, "WEBP", (64, 36)),  # a still of a format frames never are
    ],
)
async def test_a_still_that_needs_a_resize_or_another_format_is_encoded_by_ffmpeg(
    make_frames: FrameMaker, noting: EncoderSettings, runs: Path, tmp_path: Path,
    ext: str, fmt: Format, upscale: int, pillow_format: str, size: tuple[int, int],
) -> None:
    (frame,) = make_frames(tmp_path / "job", count=1, size=(64, 36), ext=ext)
    out = tmp_path / f"still.{fmt.extension}"
    await encode(
        EncodeRequest(frames=[frame], fps=1, format=fmt, out_path=out, upscale=upscale), noting
    )
    assert ffmpeg_runs(runs) == 1
    with Image.open(out) as image:
        assert (image.format, image.size) == (pillow_format, size)


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda data: data[: len(data) // 2],
    "end cut": lambda data: data[:-2],
    "not an image": lambda data: b"not an image at all",
    # In a PNG's pixel data a zeroed run breaks the chunk's CRC; a JPEG has no such check (its
    # scan decodes to other pixels), so that form is the PNG's only.
    "zeroed run": lambda data: data[:300] + bytes(50) + data[350:],
}


@pytest.mark.parametrize(
    ("ext", "fmt", "damage"),
    [*(("png", Format.PNG, damage) for damage in DAMAGE),
     *(("jpg", Format.JPEG, damage) for damage in DAMAGE if damage != "zeroed run")],
)
async def test_a_damaged_still_frame_is_left_to_ffmpeg_never_passed_through_as_it_is(
    make_frames: FrameMaker, noting: EncoderSettings, runs: Path, tmp_path: Path,
    ext: str, fmt: Format, damage: str,
) -> None:
    # ffmpeg decodes what it can of some damage (a cut end chunk, grey where a JPEG scan is cut)
    # and re-encodes it, as before there was a pass-through, or fails; the damaged bytes
    # themselves never become a result.
    (frame,) = make_frames(tmp_path / "job", count=1, ext=ext)
    frame.write_bytes(DAMAGE[damage](frame.read_bytes()))
    out = tmp_path / "out" / f"still.{fmt.extension}"
    out.parent.mkdir()
    try:
        await encode(EncodeRequest(frames=[frame], fps=1, format=fmt, out_path=out), noting)
    except EncodeError as exc:
        assert exc.transient is False
        assert list(out.parent.iterdir()) == []
    else:
        assert out.read_bytes() != frame.read_bytes()
    assert ffmpeg_runs(runs) == 1


async def test_a_png_frame_named_jpg_is_left_to_ffmpeg_not_passed_off_as_jpeg(
    make_frames: FrameMaker, noting: EncoderSettings, runs: Path, tmp_path: Path
) -> None:
    (png,) = make_frames(tmp_path / "png", count=1, size=(64, 36))
    frame = tmp_path / "job" / "frame-00000.jpg"
    frame.parent.mkdir()
    frame.write_bytes(png.read_bytes())
    out = tmp_path / "still.jpg"
    with pytest.raises(EncodeError, match="No JPEG data"):
        await encode(EncodeRequest(frames=[frame], fps=1, format=Format.JPEG, out_path=out),
                     noting)
    assert ffmpeg_runs(runs) == 1
    assert not out.exists()


async def test_a_still_that_cannot_be_written_is_an_encode_error_with_no_partial_left(
    make_frames: FrameMaker, noting: EncoderSettings, runs: Path, tmp_path: Path
) -> None:
    (frame,) = make_frames(tmp_path / "job", count=1, size=(64, 36))
    blocked = tmp_path / "not-a-dir"  # a file where the output's dir should be
    blocked.write_text("")
    with pytest.raises(EncodeError, match="png encode: cannot write") as caught:
        await encode(EncodeRequest(frames=[frame], fps=1, format=Format.PNG,
                                   out_path=blocked / "still.png"), noting)
    assert caught.value.transient is False
    assert "Not a directory" in str(caught.value)
    assert ffmpeg_runs(runs) == 0


async def test_a_still_cancelled_while_it_is_copied_leaves_no_partial_file(
    noting: EncoderSettings, tmp_path: Path
) -> None:
    # Noise does not compress: a ~48 MB PNG keeps its thread busy long enough to be cancelled.
    frame = tmp_path / "job" / "frame-00000.png"
    frame.parent.mkdir()
    Image.frombytes("RGB", (4000, 4000), os.urandom(4000 * 4000 * 3)).save(
        frame, compress_level=0)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    # The encode's threads run here, so the test can wait until every one of them is done.
    threads = ThreadPoolExecutor(max_workers=2)
    asyncio.get_running_loop().set_default_executor(threads)
    cancelled = 0
    for _ in range(5):
        task = asyncio.create_task(encode(EncodeRequest(
            frames=[frame], fps=1, format=Format.PNG, out_path=out_dir / "still.png"), noting))
        await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if not task.cancelled():  # it finished first: not the case under test
            (out_dir / "still.png").unlink()
        cancelled += task.cancelled()
    threads.shutdown(wait=True)  # the copies a cancel could not stop have now been written
    async with asyncio.timeout(10):  # and are removed by the loop once it hears they are done
        while leftovers := list(out_dir.iterdir()):
            await asyncio.sleep(0.01)
    assert leftovers == []
    assert cancelled >= 3
