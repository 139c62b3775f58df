"""The grab pipeline asks the browser for the frames its output is cheapest made from."""

from __future__ import annotations

from typing import Any

import pytest

import tests.grab_queue.conftest as queue_conftest
from oven.actors.browser_pool import Capture
from oven.capture import CaptureResult
from tests.grab_queue.conftest import StartQueue
from tests.grab_queue.stubs import StubBrowser

asked: list[tuple[str, str | None]] = []


class RecordingBrowser(StubBrowser):
    async def _capture(self, job: Capture) -> CaptureResult:
        asked.append((job.job_id, job.request.frame_format))
        return await super()._capture(job)


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> None:
    asked.clear()
    monkeypatch.setattr(queue_conftest, "StubBrowser", RecordingBrowser)


@pytest.mark.usefixtures("recording")
@pytest.mark.parametrize(("fmt", "frames", "config", "expected"), [
    ("webp", 4, {}, "webp"),  # lossy: the piece's canvas, where it is the whole picture
    ("webp", 4, {"encoder": {"canvas_frames": False}}, "jpeg"),  # cheaper than PNG frames
    ("mp4", 4, {}, "canvas-jpeg"),  # the canvas as JPEG, where it is the whole picture
    ("mp4", 4, {"encoder": {"canvas_frames": False}}, "jpeg"),
    ("mp4", 1, {}, "jpeg"),  # a still: one screenshot costs less than the canvas's probe
    ("jpeg", 1, {}, "jpeg"),  # Chromium's JPEG is the still itself
    ("png", 1, {}, "png"),
    ("gif", 4, {}, "png"),  # a palette of exact colours
    ("webp", 4, {"encoder": {"webp_lossless": True}}, "png"),
    ("webp", 4, {"encoder": {"lossy_frames": "png"}}, "png"),
])
def test_the_capture_takes_the_frames_its_output_format_is_made_from(
        start_queue: StartQueue, fmt: str, frames: int, config: dict[str, Any],
        expected: str) -> None:
    q = start_queue(config)
    job_id = q.submit(format=fmt, frames=frames).job["id"]
    q.final(job_id)
    assert asked == [(job_id, expected)]
