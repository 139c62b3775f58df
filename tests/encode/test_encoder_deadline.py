"""The Encoder actor enforces an Encode's own deadline: ffmpeg is killed when it passes, whether
or not the asker is still waiting or remembers to cancel. Real ffmpeg, real actor thread."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

from oven.actors.encoder._actor import Encode, EncodeDeadlinePassed, Encoder
from oven.actors.runtime import ActorContext
from oven.config import Settings
from oven.encode import EncodeRequest, Format, running_pids
from oven.supervisor import Registry


def slow_encode(frames: list[Path], out: Path, job_id: str, deadline: float | None) -> Encode:
    """About 10 s of veryslow x264 at 8x: long enough to be interrupted."""
    request = EncodeRequest(frames=frames, fps=16, format=Format.MP4, out_path=out, upscale=8)
    return Encode(job_id, request, deadline=deadline)


@pytest.fixture
def encoder() -> Iterator[pykka.ActorRef[Any]]:
    settings = Settings.model_validate({"encoder": {"mp4_preset": "veryslow", "concurrency": 1}})
    ctx = ActorContext(name="encoder", mailbox_capacity=10, lookup=Registry(),
                       on_exit=lambda *a: None)
    ref = Encoder.start(ctx, settings)
    yield ref
    ref.stop(timeout=15)


def wait_no_ffmpeg(timeout: float) -> None:
    """(The conftest's autouse check then also looks for any ffmpeg child of this process.)"""
    deadline = time.monotonic() + timeout
    while running_pids():
        assert time.monotonic() < deadline, f"ffmpeg still running: {running_pids()}"
        time.sleep(0.02)  # the kernel finishing a SIGKILLed group's exit


def test_an_encode_whose_deadline_passes_mid_run_kills_ffmpeg_even_if_the_asker_gave_up(
    encoder: pykka.ActorRef[Any], frames_640: list[Path], tmp_path: Path,
) -> None:
    started = time.monotonic()
    reply = encoder.ask(slow_encode(frames_640, tmp_path / "a.mp4", "job-1", started + 1.5),
                        block=False)
    # The asker waits less than the deadline, gives up, and never sends CancelEncode.
    with pytest.raises(pykka.Timeout):
        reply.get(timeout=0.5)
    assert running_pids(), "ffmpeg should be running before the deadline"
    with pytest.raises(EncodeDeadlinePassed, match="deadline passed") as caught:
        reply.get(timeout=5)
    assert time.monotonic() - started < 3.0
    assert caught.value.transient is True
    assert "job-1" in str(caught.value) and "ffmpeg was killed" in str(caught.value)
    wait_no_ffmpeg(timeout=1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no output, no partial file


def test_an_encode_whose_deadline_passes_while_it_waits_for_a_slot_never_starts_ffmpeg(
    encoder: pykka.ActorRef[Any], frames_640: list[Path], tmp_path: Path,
) -> None:
    now = time.monotonic()
    first = encoder.ask(slow_encode(frames_640, tmp_path / "a.mp4", "job-1", now + 2.0),
                        block=False)
    second = encoder.ask(slow_encode(frames_640, tmp_path / "b.mp4", "job-2", now + 0.5),
                         block=False)
    with pytest.raises(EncodeDeadlinePassed, match="waiting for an encoder slot"):
        second.get(timeout=2)
    assert time.monotonic() - now < 1.5
    assert len(running_pids()) == 1  # only the first job's ffmpeg ever ran
    with pytest.raises(EncodeDeadlinePassed):
        first.get(timeout=5)
    wait_no_ffmpeg(timeout=1.0)


def test_an_encode_without_a_deadline_or_with_a_far_one_completes(
    encoder: pykka.ActorRef[Any], frames_640: list[Path], tmp_path: Path,
) -> None:
    request = EncodeRequest(frames=frames_640[:2], fps=2, format=Format.GIF,
                            out_path=tmp_path / "a.gif")
    done = encoder.ask(Encode("job-1", request), timeout=30)
    assert done.path.stat().st_size > 0
    request = request.model_copy(update={"out_path": tmp_path / "b.gif"})
    done = encoder.ask(Encode("job-2", request, deadline=time.monotonic() + 30), timeout=30)
    assert done.path.stat().st_size > 0
