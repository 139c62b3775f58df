"""Failures: bad input, timeouts, cancellation and kills leave no output and no process."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from pydantic import ValidationError

from oven.encode import (
    EncodeError,
    EncodeRequest,
    EncoderSettings,
    EncodeTimeout,
    Format,
    check_ffmpeg,
    encode,
    ffmpeg_version,
    running_pids,
)

FrameMaker = Callable[..., list[Path]]


def slow_request(frames: list[Path], out_path: Path) -> EncodeRequest:
    """With `slow_settings`, about 10 s of work here: long enough to be interrupted."""
    return EncodeRequest(frames=frames, fps=16, format=Format.MP4, out_path=out_path, upscale=8)


def slow_settings(**overrides: object) -> EncoderSettings:
    return EncoderSettings.model_validate({"mp4_preset": "veryslow", **overrides})


async def wait_for_ffmpeg(task: asyncio.Task[object], timeout: float = 10.0) -> frozenset[int]:
    """Poll until the encode has started its process (bounded, no fixed sleep)."""
    async with asyncio.timeout(timeout):
        while not (pids := running_pids()):
            assert not task.done(), task
            await asyncio.sleep(0.01)
    return pids


def is_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def leftovers(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


async def test_corrupt_frame_raises_encode_error_with_ffmpeg_stderr_and_no_output(
    make_frames: FrameMaker, settings: EncoderSettings, tmp_path: Path
) -> None:
    frames = make_frames(tmp_path / "job", count=6)
    frames[3].write_bytes(os.urandom(500))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(EncodeError) as caught:
        await encode(
            EncodeRequest(frames=frames, fps=6, format=Format.GIF, out_path=out_dir / "a.gif"),
            settings,
        )
    error = caught.value
    assert type(error) is EncodeError
    assert error.format == "gif"
    assert error.returncode is not None and error.returncode > 0
    assert error.transient is False
    assert "Invalid PNG signature" in error.stderr
    assert "gif encode" in str(error) and f"code {error.returncode}" in str(error)
    assert "Invalid PNG signature" in str(error)
    assert leftovers(out_dir) == []


async def test_missing_frame_file_is_an_encode_error_not_a_shorter_animation(
    make_frames: FrameMaker, settings: EncoderSettings, tmp_path: Path
) -> None:
    frames = make_frames(tmp_path, count=4)
    frames[2].unlink()
    with pytest.raises(EncodeError, match="missing"):
        await encode(
            EncodeRequest(frames=frames, fps=4, format=Format.MP4, out_path=tmp_path / "a.mp4"),
            settings,
        )
    assert not (tmp_path / "a.mp4").exists()


async def test_timeout_kills_ffmpeg_and_leaves_no_process_or_partial_file(
    frames_640: list[Path], tmp_path: Path
) -> None:
    settings = slow_settings(timeout_s=0.5)
    task = asyncio.create_task(encode(slow_request(frames_640, tmp_path / "a.mp4"), settings))
    pids = await wait_for_ffmpeg(task)
    with pytest.raises(EncodeTimeout) as caught:
        await asyncio.wait_for(task, timeout=10)
    assert caught.value.transient is True
    assert "ran past 0.5 s" in str(caught.value)
    assert all(is_gone(pid) for pid in pids)
    assert running_pids() == frozenset()
    assert leftovers(tmp_path) == []


async def test_cancelling_mid_encode_kills_the_process_group_and_leaves_nothing(
    frames_640: list[Path], tmp_path: Path
) -> None:
    # A wrapper that runs ffmpeg as its child (no exec): killing only the wrapper would orphan
    # ffmpeg, so this passes only if the whole process group is killed.
    wrapper = tmp_path / "ffmpeg-wrapper"
    wrapper.write_text(f'#!/bin/sh\n"{shutil.which("ffmpeg")}" "$@"\n')
    wrapper.chmod(0o755)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    settings = slow_settings(ffmpeg_path=str(wrapper))
    task = asyncio.create_task(encode(slow_request(frames_640, out_dir / "a.mp4"), settings))
    (leader,) = await wait_for_ffmpeg(task)
    async with asyncio.timeout(10):
        while not (group := psutil.Process(leader).children()):
            await asyncio.sleep(0.01)
    assert "ffmpeg" in group[0].name()

    task.cancel()
    # Bounded: if only the wrapper were killed, reaping would wait for the orphaned ffmpeg,
    # which holds the stderr pipe open for ~10 s more; 5 s still tells the two apart on a
    # loaded 2-core machine.
    async with asyncio.timeout(5):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert is_gone(leader)
    # SIGKILL to the group is immediate; the bound only allows for the kernel to finish the
    # exit (generous for a loaded machine). Killing only the wrapper would leave this ffmpeg
    # encoding for ~10 s.
    async with asyncio.timeout(5):
        while not is_gone(group[0].pid):
            await asyncio.sleep(0.01)
    assert running_pids() == frozenset()
    assert leftovers(out_dir) == []


async def test_ffmpeg_killed_from_outside_is_a_transient_error(
    frames_640: list[Path], tmp_path: Path
) -> None:
    settings = slow_settings()
    task = asyncio.create_task(encode(slow_request(frames_640, tmp_path / "a.mp4"), settings))
    (pid,) = await wait_for_ffmpeg(task)
    os.kill(pid, signal.SIGKILL)  # what the OOM killer would do
    with pytest.raises(EncodeError) as caught:
        await asyncio.wait_for(task, timeout=10)
    assert type(caught.value) is EncodeError
    assert caught.value.transient is True
    assert "SIGKILL" in str(caught.value)
    assert leftovers(tmp_path) == []


async def test_missing_ffmpeg_executable_is_an_actionable_encode_error(
    frames_640: list[Path], tmp_path: Path
) -> None:
    settings = EncoderSettings(ffmpeg_path=str(tmp_path / "no-ffmpeg"))
    with pytest.raises(EncodeError, match="apt-get install ffmpeg") as caught:
        # A JPEG of a PNG frame: a PNG still would be the frame as it is, with no ffmpeg.
        await encode(
            EncodeRequest(frames=frames_640[:1], fps=1, format=Format.JPEG,
                          out_path=tmp_path / "a.jpg"),
            settings,
        )
    assert caught.value.transient is False


def test_check_ffmpeg_is_none_for_debians_ffmpeg(settings: EncoderSettings) -> None:
    assert check_ffmpeg(settings) is None


def test_check_ffmpeg_names_the_path_and_the_fix_when_missing() -> None:
    message = check_ffmpeg(EncoderSettings(ffmpeg_path="/nonexistent/ffmpeg"))
    assert message == (
        "ffmpeg not found at '/nonexistent/ffmpeg': "
        "install Debian's ffmpeg (apt-get install ffmpeg)"
    )


def test_check_ffmpeg_reports_an_ffmpeg_without_the_needed_encoders(tmp_path: Path) -> None:
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho ' V..... png   PNG image'\n")
    fake.chmod(0o755)
    message = check_ffmpeg(EncoderSettings(ffmpeg_path=str(fake)))
    assert message is not None
    assert "lacks encoders mjpeg, libwebp, libwebp_anim, gif, libx264" in message


async def test_ffmpeg_version_is_the_first_line_of_dash_version(
    settings: EncoderSettings,
) -> None:
    assert (await ffmpeg_version(settings)).startswith("ffmpeg version ")


def test_requests_with_gaps_in_frame_numbers_are_rejected(tmp_path: Path) -> None:
    frames = [tmp_path / "frame-00000.png", tmp_path / "frame-00002.png"]
    with pytest.raises(ValidationError, match="without gaps"):
        EncodeRequest(frames=frames, fps=2, format=Format.GIF, out_path=tmp_path / "a.gif")


def test_requests_with_unexpected_frame_names_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="frame-NNNNN"):
        EncodeRequest(frames=[tmp_path / "shot.png"], fps=1, format=Format.PNG,
                      out_path=tmp_path / "a.png")


def test_still_formats_take_exactly_one_frame(tmp_path: Path) -> None:
    frames = [tmp_path / "frame-00000.png", tmp_path / "frame-00001.png"]
    with pytest.raises(ValidationError, match="exactly one frame"):
        EncodeRequest(frames=frames, fps=2, format=Format.JPEG, out_path=tmp_path / "a.jpg")
