"""viewport_scale at the unit level: its schema and rules, its place in the capture key, and the
capture (the page at width/scale x height/scale CSS px, PNG frames) and encode (nearest-neighbour
upscale back to width x height) a grab becomes."""

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
    return GrabRequest.model_validate({"piece": "anim", "width": 640, "height": 360, **fields})


def refusal(**fields: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        grab(**fields)
    return str(caught.value)


def test_the_page_is_laid_out_at_the_size_divided_by_the_scale(tmp_path: Path) -> None:
    request = grab(format="gif", frames=4, viewport_scale=4)
    capture = request.capture_request(TARGET, guard="off", encoder=EncoderSettings())
    assert (capture.width, capture.height, capture.density) == (160, 90, 1.0)
    frames = [tmp_path / f"frame-{k:05d}.png" for k in range(4)]
    encode = request.encode_request(frames, tmp_path / "out.gif")
    assert encode.upscale == 4


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp", "gif", "mp4"])
def test_scaled_frames_are_png_so_art_pixels_reach_the_encoder_exact(fmt: str) -> None:
    # JPEG frames would smear a 1-px pattern before the upscale made it 4 px wide.
    lossy = EncoderSettings(lossy_frames="jpeg")
    frames = 1 if fmt in ("png", "jpeg") else 4
    scaled = grab(format=fmt, frames=frames, viewport_scale=4)
    assert scaled.capture_request(TARGET, guard="off", encoder=lossy).frame_format == "png"


def test_at_scale_one_the_request_is_as_before(tmp_path: Path) -> None:
    request = grab(format="jpeg")
    assert request.viewport_scale == 1
    capture = request.capture_request(TARGET, guard="off",
                                      encoder=EncoderSettings(lossy_frames="jpeg"))
    assert (capture.width, capture.height, capture.frame_format) == (640, 360, "jpeg")
    encode = request.encode_request([tmp_path / "frame-00000.jpg"], tmp_path / "out.jpg")
    assert encode.upscale == 1


def test_viewport_scale_joins_the_capture_key_only_when_it_is_not_one() -> None:
    plain = capture_key(grab(), TARGET, "r1")
    assert capture_key(grab(viewport_scale=1), TARGET, "r1") == plain
    assert capture_key(grab(viewport_scale=2), TARGET, "r1") != plain
    assert (capture_key(grab(viewport_scale=2), TARGET, "r1")
            != capture_key(grab(viewport_scale=4), TARGET, "r1"))


@pytest.mark.parametrize(("width", "height"), [(642, 360), (640, 362), (641, 361), (6, 360)])
def test_a_size_that_is_not_a_multiple_of_the_scale_is_refused_with_the_nearest_sizes(
        width: int, height: int) -> None:
    message = refusal(width=width, height=height, viewport_scale=4)
    assert "viewport_scale" in message and "multiple of 4" in message
    if width % 4:
        assert f"{width // 4 * 4 or 4}" in message and f"{(width // 4 + 1) * 4}" in message


def test_density_and_viewport_scale_together_are_refused() -> None:
    message = refusal(density=2, viewport_scale=2)
    assert "density" in message and "viewport_scale" in message
    assert grab(density=2, viewport_scale=1).density == 2


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "17", "1e308", "1e400", "NaN", "Infinity",
                                   "-Infinity", "\"4px\"", "[2]", "{}", "null"])
def test_hostile_viewport_scale_is_refused_by_the_schema(value: str) -> None:
    body = json.loads('{"piece": "anim", "width": 640, "height": 360, "viewport_scale": '
                      + value + "}")
    with pytest.raises(ValidationError, match="viewport_scale"):
        GrabRequest.model_validate(body)


@settings(max_examples=200, deadline=None)
@given(scale=st.integers(1, 16), art_width=st.integers(1, 300), art_height=st.integers(1, 300),
       animated=st.booleans())
def test_every_scaled_grab_the_schema_admits_builds_a_capture_and_an_encode(
        tmp_path_factory: pytest.TempPathFactory, scale: int, art_width: int,
        art_height: int, animated: bool) -> None:
    request = grab(width=art_width * scale, height=art_height * scale, viewport_scale=scale,
                   format="gif" if animated else "png", frames=4 if animated else 1)
    if request.limit_violations(LimitsSettings(max_width=4096, max_height=4096)):
        return
    out = tmp_path_factory.getbasetemp()
    capture = request.capture_request(TARGET, guard="off", encoder=EncoderSettings())
    assert (capture.width * scale, capture.height * scale) == (request.width, request.height)
    frames = [out / f"frame-{k:05d}.png" for k in range(request.frames)]
    request.encode_request(frames, out / "out.gif")
