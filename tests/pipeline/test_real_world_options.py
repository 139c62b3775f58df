"""Ready rules, capture options and quality flags through a real `oven serve` (issue: real-world
pieces): what a client sends, what the job view says, and that none of it freezes a piece."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from tests.oven_process import OvenProcess

from .grab_client import grab_bytes, post_grab, submit, wait_for_job


def fail_reason(oven: OvenProcess, **body: Any) -> str:
    view = wait_for_job(oven, submit(oven, **body)["id"])
    assert view["state"] == "failed", view
    return str(view["error"])


def test_a_static_piece_asked_for_frames_is_complete_and_flagged_frozen(
        shared_oven: OvenProcess) -> None:
    view, _ = grab_bytes(shared_oven, piece="still", format="webp", frames=16, width=96,
                         height=64)
    assert view["result"]["flags"] == ["frozen"]
    assert view["result"]["frozen"] is True
    assert view["result"]["ready"] == "contract"


def test_reject_fails_the_grab_and_never_freezes_the_piece(shared_oven: OvenProcess) -> None:
    # freeze_after is 3: four failures in a row would freeze a piece whose fault they were.
    for width in (90, 91, 92, 93):
        reason = fail_reason(shared_oven, piece="still", format="webp", frames=3, width=width,
                             height=64, reject=["frozen"])
        assert "rejected as frozen" in reason
    view, _ = grab_bytes(shared_oven, piece="still", format="png", width=94, height=64)
    assert view["state"] == "complete"


def test_an_injected_script_that_throws_is_reported_and_never_freezes_the_piece(
        shared_oven: OvenProcess) -> None:
    for width in (80, 81, 82, 83):
        view, _ = grab_bytes(shared_oven, piece="still", format="png", width=width, height=64,
                             scripts=["throw new Error('thrown by a client script')"])
        assert any("thrown by a client script" in e for e in view["result"]["page_errors"])


def test_transparent_webp_keeps_alpha_through_ffmpeg(shared_oven: OvenProcess) -> None:
    # The piece's own background and canvas are hidden: nothing is painted but the page.
    _, data = grab_bytes(shared_oven, piece="anim", format="webp", frames=2, width=64,
                         height=48, background="transparent",
                         styles=["html, body { background: transparent !important }"
                                 " canvas { visibility: hidden }"])
    image = Image.open(io.BytesIO(data))
    assert image.mode == "RGBA"
    assert image.convert("RGBA").getpixel((10, 10))[3] == 0  # type: ignore[index]


def test_quality_changes_the_output_of_each_lossy_format(shared_oven: OvenProcess) -> None:
    for fmt, frames in (("jpeg", 1), ("webp", 4), ("mp4", 4)):
        sizes = []
        for quality in (10, 95):
            _, data = grab_bytes(shared_oven, piece="anim", format=fmt, frames=frames,
                                 width=160, height=96, clock="virtual", quality=quality)
            sizes.append(len(data))
        assert sizes[0] * 1.5 < sizes[1], (fmt, sizes)


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"format": "jpeg", "background": "transparent"}, "background", "no alpha channel"),
    ({"format": "mp4", "frames": 4, "background": "transparent"}, "background", "no alpha"),
    ({"format": "png", "quality": 50}, "quality", "lossless"),
    ({"format": "gif", "frames": 2, "quality": 50}, "quality", "lossless"),
    ({"wait_for": "true", "wait_for_selector": "canvas"}, "wait_for", "at most one"),
    ({"reject": ["ugly"]}, "reject", ""),
    ({"delay_ms": 60_001}, "delay_ms", ""),
    ({"delay_ms": 5001}, "delay_ms", "at most 5000"),
    ({"selector": ""}, "selector", ""),
    ({"color_scheme": "purple"}, "color_scheme", ""),
    ({"wait_for": "x" * 2001}, "wait_for", ""),
    ({"scripts": ["1;"] * 17}, "scripts", ""),
])
def test_malformed_options_are_refused_with_a_422_naming_the_field(
        shared_oven: OvenProcess, body: dict[str, Any], field: str, words: str) -> None:
    response = post_grab(shared_oven, piece="anim", **body)
    assert response.status_code == 422, response.text
    text = response.text
    assert field in text and words in text, text


def test_options_are_part_of_the_capture_key(shared_oven: OvenProcess) -> None:
    plain = submit(shared_oven, piece="still", format="png", width=70, height=40)
    wait_for_job(shared_oven, plain["id"])
    for extra in ({"color_scheme": "dark"}, {"delay_ms": 10}, {"reduced_motion": True},
                  {"styles": ["body{}"]}, {"reject": ["dud"]}, {"selector": "canvas"}):
        other = submit(shared_oven, piece="still", format="png", width=70, height=40, **extra)
        assert other["cached"] is False and other["id"] != plain["id"], extra
        wait_for_job(shared_oven, other["id"])
    # Options at their defaults are the request without them: the same key, a cache hit.
    again = post_grab(shared_oven, piece="still", format="png", width=70, height=40,
                      delay_ms=0, reject=[], background="page")
    assert again.status_code == 200 and again.json()["cached"] is True, again.text
