"""Time-lapses (playback_fps) and art pixels (viewport_scale) through a real `oven serve`:
POST /grabs, real Chromium, real ffmpeg, the files read back."""

from __future__ import annotations

import io
import itertools
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.capture.test_viewport_scale_pixels import (
    CHECKERBOARD_JS,
    COLOURS,
    blocks_not_one_colour,
)
from tests.encode.test_playback_durations import gif_frame_cs, webp_frame_ms
from tests.oven_process import OvenProcess

from .grab_client import grab_bytes, post_grab, submit, wait_for_job
from .test_formats import painted_time_us


def frames_of(data: bytes) -> list[Image.Image]:
    out = []
    with Image.open(io.BytesIO(data)) as image:
        for k in range(getattr(image, "n_frames", 1)):
            image.seek(k)
            out.append(image.convert("RGB"))
    return out


def saved(data: bytes, path: Path) -> Path:
    path.write_bytes(data)
    return path


def ffprobe_duration(path: Path) -> float:
    done = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                           "json", str(path)], capture_output=True, check=True, timeout=30)
    return float(json.loads(done.stdout)["format"]["duration"])


def test_a_time_lapse_takes_frames_one_capture_interval_apart_and_plays_them_faster(
        shared_oven: OvenProcess, tmp_path: Path) -> None:
    view, data = grab_bytes(shared_oven, piece="clock", format="webp", width=320, height=180,
                            frames=6, fps=5, playback_fps=20, clock="virtual")
    times = [painted_time_us(frame) for frame in frames_of(data)]
    # Page time: 200 ms between frames (fps 5)...
    assert [b - a for a, b in itertools.pairwise(times)] == [200_000] * 5, times
    # ...played 50 ms apart (playback_fps 20): four times as fast.
    assert webp_frame_ms(saved(data, tmp_path / "t.webp")) == [50] * 6
    assert view["result"]["frames"] == 6


@pytest.mark.parametrize("fmt", ["webp", "gif", "mp4"])
def test_a_time_lapse_lasts_its_frames_over_the_playback_rate(
        shared_oven: OvenProcess, tmp_path: Path, fmt: str) -> None:
    # The old service's default: captured at 7.5 fps, played at 15.
    _, data = grab_bytes(shared_oven, piece="anim", format=fmt, width=160, height=90,
                         duration=1.6, fps=7.5, playback_fps=15, clock="virtual")
    path = saved(data, tmp_path / f"t.{fmt}")
    if fmt == "webp":
        durations = webp_frame_ms(path)
        assert len(durations) == 12 and abs(sum(durations) - 800) <= 1, durations
    elif fmt == "gif":
        delays = gif_frame_cs(path)
        assert len(delays) == 12 and sum(delays) == 80, delays
        assert ffprobe_duration(path) == pytest.approx(0.8)
    else:
        assert ffprobe_duration(path) == pytest.approx(0.8, abs=1e-3)


def test_playback_fps_and_viewport_scale_each_make_their_own_capture(
        shared_oven: OvenProcess) -> None:
    plain: dict[str, Any] = {"piece": "anim", "format": "gif", "width": 96, "height": 64,
                             "frames": 4, "fps": 10, "clock": "virtual"}
    first = submit(shared_oven, **plain)
    assert wait_for_job(shared_oven, first["id"])["state"] == "complete"
    keys = {wait_for_job(shared_oven, first["id"])["capture_key"]}
    for extra in ({"playback_fps": 20}, {"viewport_scale": 2}, {"viewport_scale": 4}):
        accepted = submit(shared_oven, **plain, **extra)
        assert not accepted["cached"], extra  # not the plain grab's file
        view = wait_for_job(shared_oven, accepted["id"])
        assert view["state"] == "complete", view
        keys.add(view["capture_key"])
        again = post_grab(shared_oven, **plain, **extra)
        assert again.status_code == 200 and again.json()["cached"], again.text
    assert len(keys) == 4
    # Asking for the capture rate, or playback for a still, is the plain grab.
    same = post_grab(shared_oven, **plain, playback_fps=10)
    assert same.status_code == 200 and same.json()["cached"], same.text


@pytest.mark.parametrize("fmt", ["png", "webp", "gif"])
def test_a_checkerboard_piece_keeps_its_art_pixels_at_viewport_scale_four(
        shared_oven: OvenProcess, fmt: str) -> None:
    frames = 1 if fmt == "png" else 3
    view, data = grab_bytes(shared_oven, piece="still", format=fmt, width=320, height=180,
                            frames=frames, viewport_scale=4, scripts=[CHECKERBOARD_JS])
    decoded = frames_of(data)
    assert len(decoded) == frames
    for frame in decoded:
        assert frame.size == (320, 180)
        assert {colour for _, colour in frame.getcolors() or []} == COLOURS
        assert blocks_not_one_colour(frame, 4) == 0
        assert {frame.getpixel((3, 3)), frame.getpixel((4, 3))} == COLOURS
    assert view["result"]["content_type"] == f"image/{fmt}"


def test_a_scaled_still_is_the_page_at_a_quarter_of_the_size_repeated(
        shared_oven: OvenProcess) -> None:
    _, small = grab_bytes(shared_oven, piece="still", format="png", width=80, height=45)
    _, scaled = grab_bytes(shared_oven, piece="still", format="png", width=320, height=180,
                           viewport_scale=4)
    page = Image.open(io.BytesIO(small)).convert("RGB")
    big = Image.open(io.BytesIO(scaled)).convert("RGB")
    assert big.size == (320, 180)
    assert big.tobytes() == page.resize((320, 180), Image.Resampling.NEAREST).tobytes()


def refused(oven: OvenProcess, raw: str) -> dict[str, Any]:
    response = httpx.post(f"{oven.url}/grabs", content=raw, timeout=30,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 422, (raw, response.status_code, response.text)
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] and error["message"], error
    return error


BASE = '"piece": "anim", "format": "webp", "width": 320, "height": 180, "frames": 4'


@pytest.mark.parametrize("value", ["0", "-1", "0.5", "NaN", "Infinity", "-Infinity", "1e308",
                                   "1e400", "61", "true", "\"15\"x", "\"fast\"", "[15]", "{}"])
def test_hostile_playback_fps_is_a_422_naming_it(shared_oven: OvenProcess, value: str) -> None:
    raw = "{" + BASE + ', "playback_fps": ' + value + "}"
    try:
        json.loads(raw)
    except json.JSONDecodeError:  # not JSON at all: the body check answers first
        response = httpx.post(f"{shared_oven.url}/grabs", content=raw, timeout=30,
                              headers={"Content-Type": "application/json"})
        assert response.status_code == 400 and "error" in response.json()
        return
    assert "playback_fps" in refused(shared_oven, raw)["message"]


@pytest.mark.parametrize("value", ["0", "-4", "1.5", "17", "1e308", "1e400", "NaN", "Infinity",
                                   "true", "\"4px\"", "[2]", "null"])
def test_hostile_viewport_scale_is_a_422_naming_it(shared_oven: OvenProcess,
                                                   value: str) -> None:
    raw = "{" + BASE + ', "viewport_scale": ' + value + "}"
    assert "viewport_scale" in refused(shared_oven, raw)["message"]


@pytest.mark.parametrize(("fields", "named"), [
    ({"width": 322, "viewport_scale": 4}, "width: 322 is not a multiple of 4"),
    ({"height": 181, "viewport_scale": 2}, "height: 181 is not a multiple of 2"),
    ({"width": 3, "height": 3, "viewport_scale": 4}, "use 4"),
    ({"density": 2, "viewport_scale": 2}, "density"),
    ({"format": "gif", "fps": 10, "playback_fps": 60}, "at most 50"),
])
def test_a_scale_or_rate_the_output_cannot_honour_is_a_422_that_says_why(
        shared_oven: OvenProcess, fields: dict[str, Any], named: str) -> None:
    body = {**json.loads("{" + BASE + "}"), **fields}
    assert named in refused(shared_oven, json.dumps(body))["message"]


def test_after_every_refusal_the_service_still_grabs(shared_oven: OvenProcess) -> None:
    assert httpx.get(f"{shared_oven.url}/health", timeout=10).status_code == 200
    _, data = grab_bytes(shared_oven, piece="anim", format="webp", width=64, height=32,
                         frames=3, fps=6, playback_fps=12, viewport_scale=2)
    assert [frame.size for frame in frames_of(data)] == [(64, 32)] * 3
