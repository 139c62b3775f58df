"""playback_fps at the unit level: its schema, its place in the capture key, and the capture and
encode a grab becomes (frames taken 1/fps apart in page time, played at playback_fps)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from oven.encode import EncoderSettings
from oven.grabs import GrabRequest, LimitsSettings, capture_key

TARGET = "http://pieces.oven.internal/anim/"


def grab(**fields: Any) -> GrabRequest:
    return GrabRequest.model_validate({"piece": "anim", "format": "webp", "frames": 12,
                                       **fields})


def key(request: GrabRequest) -> str:
    return capture_key(request, TARGET, "r1")


def frames_in(tmp_path: Path, count: int) -> list[Path]:
    return [tmp_path / f"frame-{k:05d}.png" for k in range(count)]


def test_a_time_lapse_captures_at_fps_and_plays_at_playback_fps(tmp_path: Path) -> None:
    request = grab(fps=7.5, playback_fps=15, frames=30)
    capture = request.capture_request(TARGET, guard="off", encoder=EncoderSettings())
    assert capture.fps == 7.5  # frames 1/7.5 s apart in page time
    encode = request.encode_request(frames_in(tmp_path, 30), tmp_path / "out.webp")
    assert encode.fps == 15  # the file plays them twice as fast


def test_without_playback_fps_the_output_plays_at_the_capture_fps(tmp_path: Path) -> None:
    request = grab(fps=12.5)
    assert request.playback_fps is None
    encode = request.encode_request(frames_in(tmp_path, 12), tmp_path / "out.webp")
    assert encode.fps == 12.5


def test_duration_is_page_time_so_a_time_lapse_counts_its_frames_at_the_capture_fps() -> None:
    request = GrabRequest.model_validate({"piece": "anim", "format": "gif", "duration": 4,
                                          "fps": 7.5, "playback_fps": 15})
    assert request.frames == 30


def test_playback_fps_joins_the_capture_key_only_when_it_changes_the_output() -> None:
    plain = key(grab(fps=10))
    assert key(grab(fps=10, playback_fps=20)) != plain
    assert key(grab(fps=10, playback_fps=20)) != key(grab(fps=10, playback_fps=30))
    # Playing at the capture rate is the same file as not asking.
    assert key(grab(fps=10, playback_fps=10)) == plain
    # A still has no playback: the same file, the same key.
    still = {"format": "png", "frames": 1}
    assert key(grab(**still, playback_fps=30)) == key(grab(**still))


@pytest.mark.parametrize("value", ["0", "-1", "-7.5", "0.5", "NaN", "Infinity", "-Infinity",
                                   "1e308", "1e400", "61", "\"fast\"", "true", "[15]", "{}"])
def test_hostile_playback_fps_is_refused_by_the_schema(value: str) -> None:
    body = json.loads('{"piece": "anim", "format": "webp", "frames": 4, "playback_fps": '
                      + value + "}")
    with pytest.raises(ValidationError, match="playback_fps"):
        GrabRequest.model_validate(body)


def test_playback_fps_above_the_configured_max_fps_is_a_limit_violation() -> None:
    limits = LimitsSettings(max_fps=30)
    assert grab(fps=10, playback_fps=30).limit_violations(limits) == []
    assert grab(fps=10, playback_fps=31).limit_violations(limits) == [
        ("playback_fps", "at most 30")]


@settings(max_examples=200, deadline=None)
@given(fps=st.floats(1, 60), playback=st.floats(1, 60), frames=st.integers(2, 300))
def test_every_time_lapse_the_schema_admits_builds_a_capture_and_an_encode(
        tmp_path_factory: pytest.TempPathFactory, fps: float, playback: float,
        frames: int) -> None:
    request = grab(fps=fps, playback_fps=playback, frames=frames)
    if request.limit_violations(LimitsSettings()):
        return
    out = tmp_path_factory.getbasetemp()
    request.capture_request(TARGET, guard="off", encoder=EncoderSettings())
    request.encode_request(frames_in(out, frames), out / "out.webp")


@pytest.mark.parametrize("fields", [{"fps": 60}, {"fps": 10, "playback_fps": 51},
                                    {"fps": 51, "playback_fps": 51}])
def test_a_gif_played_faster_than_fifty_frames_a_second_is_refused(
        fields: dict[str, float]) -> None:
    # Its delays are whole centiseconds, and browsers play a delay under 2 cs as 10 cs.
    with pytest.raises(ValidationError, match="at most 50"):
        grab(format="gif", **fields)


def test_a_gif_at_fifty_frames_a_second_or_a_gif_still_is_admitted() -> None:
    assert grab(format="gif", fps=10, playback_fps=50).playback_fps == 50
    assert grab(format="gif", fps=60, frames=1).fps == 60
    assert grab(format="webp", fps=10, playback_fps=60).playback_fps == 60
