"""A capture's stages reach the grab queue by one channel, in order with the capture's answer."""

from __future__ import annotations

from typing import Any

import pytest

import tests.grab_queue.conftest as queue_conftest
from oven.actors.browser_pool import Capture
from oven.actors.grab_queue import Cancel
from oven.capture import CaptureResult
from tests.grab_queue.conftest import Scripts, StartQueue
from tests.grab_queue.stubs import Outcome, Script, StubBrowser
from tests.waiting import wait_until


class StagingBrowser(StubBrowser):
    """The stub browser, telling the stages a real capture goes through (ready, capture)
    before it plays its script."""

    async def _capture(self, job: Capture) -> CaptureResult:
        assert job.on_stage is not None
        job.on_stage("ready")
        job.on_stage("capture")
        return await super()._capture(job)


@pytest.fixture
def staging(monkeypatch: pytest.MonkeyPatch) -> None:
    # conftest builds its system from the stub named StubBrowser at start time
    monkeypatch.setattr(queue_conftest, "StubBrowser", StagingBrowser)


def _stage(q: Any, job_id: str) -> str | None:
    stage: str | None = q.job(job_id)["stage"]
    return stage


@pytest.mark.usefixtures("staging")
def test_a_capture_in_the_browser_shows_its_stage_in_the_jobs_view(
        start_queue: StartQueue) -> None:
    q = start_queue(scripts=Scripts(browser=Script(Outcome.HANG)))
    job_id = q.submit().job["id"]
    q.browser.wait_calls(1)
    wait_until("the capture stage", lambda: _stage(q, job_id) == "capture", timeout=10,
               interval=0.02)
    q.system.ask("grab_queue", Cancel(job_id), timeout=30)
    assert q.final(job_id)["state"] == "cancelled"


@pytest.mark.usefixtures("staging")
def test_a_capture_stage_never_lands_after_the_capture_has_answered(
        start_queue: StartQueue) -> None:
    q = start_queue(scripts=Scripts(encoder=Script(Outcome.HANG)))
    job_id = q.submit().job["id"]
    q.encoder.wait_calls(1)
    # the browser's stages came before its answer, so nothing moves the job back from encode
    assert _stage(q, job_id) == "encode"
    for _ in range(20):
        assert _stage(q, job_id) == "encode"
    q.system.ask("grab_queue", Cancel(job_id), timeout=30)
    assert q.final(job_id)["state"] == "cancelled"


def test_a_capture_names_no_actor_to_tell_its_stages_to() -> None:
    import oven.actors.browser_pool as browser_pool

    assert "progress_to" not in Capture.__dataclass_fields__
    assert "CaptureStage" not in browser_pool.__all__
