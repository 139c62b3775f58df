"""One schema for what a grab may ask: every request the edge admits is a capture that can run,
and a request the capture could not run is refused at the edge, never blamed on the piece.

Failed before: the edge took `fps > 0` (and limits up to 8192 px, 10 000 frames, 120 fps) while
capture required 1..60 fps, 4096 px and 3600 frames, so `fps=0.5` became an "internal error"
counted against the piece, and three such requests froze it for everyone.
"""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from oven.encode import EncoderSettings
from oven.grabs import GrabRequest, LimitsSettings
from tests.oven_process import OvenProcess

FIELD_LIMITS = {name: LimitsSettings.model_fields[name].metadata for name in (
    "max_width", "max_height", "max_density", "max_frames", "max_fps", "max_duration_s")}


def _highest(name: str) -> float:
    """The largest value the limits schema lets an operator configure."""
    for rule in FIELD_LIMITS[name]:
        if hasattr(rule, "le"):
            return float(rule.le)
    raise AssertionError(f"{name} has no upper bound")


WIDEST = LimitsSettings(
    max_width=int(_highest("max_width")), max_height=int(_highest("max_height")),
    max_density=_highest("max_density"), max_frames=int(_highest("max_frames")),
    max_fps=_highest("max_fps"), max_duration_s=_highest("max_duration_s"))
LIMITS = [LimitsSettings(), WIDEST]


def _admitted(body: dict[str, object], limits: LimitsSettings) -> GrabRequest | None:
    """The edge's verdict: the grab, or None when it answers 422."""
    try:
        grab = GrabRequest.model_validate(body)
    except ValidationError:
        return None
    return None if grab.limit_violations(limits) else grab


@pytest.mark.parametrize("limits", LIMITS, ids=["defaults", "widest-configurable"])
def test_every_extreme_the_edge_admits_builds_a_capture_request(limits: LimitsSettings) -> None:
    extremes: list[dict[str, object]] = []
    for width in (1, limits.max_width):
        for height in (1, limits.max_height):
            for density in (1.0, limits.max_density):
                for fps in (1.0, limits.max_fps):
                    frames = min(limits.max_frames, int(limits.max_duration_s * fps))
                    extremes.append({"piece": "anim", "format": "webp", "width": width,
                                     "height": height, "density": density, "fps": fps,
                                     "frames": frames})
                    extremes.append({"piece": "anim", "format": "png", "width": width,
                                     "height": height, "density": density, "fps": fps})
    for body in extremes:
        grab = _admitted(body, limits)
        assert grab is not None, body  # the extremes are admitted...
        grab.capture_request("http://pieces.oven.internal/anim/", guard="off",
                             encoder=EncoderSettings())  # ...and run


@settings(max_examples=300, deadline=None)
@given(width=st.integers(-2, 9000), height=st.integers(-2, 9000),
       density=st.floats(0, 9, allow_nan=False), fps=st.floats(0, 250, allow_nan=False),
       frames=st.integers(-1, 12_000), duration=st.none() | st.floats(0, 700),
       animated=st.booleans(), widest=st.booleans())
def test_no_request_the_edge_admits_is_refused_by_capture(
        width: int, height: int, density: float, fps: float, frames: int,
        duration: float | None, animated: bool, widest: bool) -> None:
    body: dict[str, object] = {"piece": "anim", "format": "webp" if animated else "png",
                               "width": width, "height": height, "density": density, "fps": fps,
                               "frames": frames if animated else 1}
    if duration is not None and animated:
        body["duration"] = duration
    grab = _admitted(body, WIDEST if widest else LimitsSettings())
    if grab is not None:
        grab.capture_request("http://pieces.oven.internal/anim/", guard="public",
                             encoder=EncoderSettings())


@pytest.mark.parametrize("query", ["fps=0.5", "fps=0.001", "fps=1e-9"])
def test_fractional_fps_is_refused_at_the_edge_and_never_freezes_the_piece(
        edge_oven: OvenProcess, query: str) -> None:
    for _ in range(4):  # more than freeze_after
        response = httpx.get(f"{edge_oven.url}/grab/png/64/64/anim?{query}", timeout=60)
        assert response.status_code == 422, response.text
        assert "fps" in response.json()["error"]["message"]
    frozen = httpx.get(f"{edge_oven.url}/frozen", timeout=10).json()
    assert all(f["piece"] != "anim" for f in frozen["frozen"]), frozen
    ok = httpx.get(f"{edge_oven.url}/grab/png/64/64/anim", timeout=90)
    assert ok.status_code == 200 and ok.content[:4] == b"\x89PNG", ok.text[:300]
