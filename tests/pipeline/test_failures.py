"""Pieces that fail, jobs that are cancelled or run out of time: answered, counted, cleaned up."""

from __future__ import annotations

import time

import httpx
import psutil

from tests.oven_process import OvenProcess, StartOven
from tests.waiting import wait_until

from .conftest import ADMIN_TOKEN
from .grab_client import (
    chromium_main,
    ffmpegs,
    job,
    post_grab,
    steady_renderer_count,
    submit,
    wait_for_job,
    wait_for_renderer_count,
)

FREEZE_AFTER = 3  # the default queue.freeze_after the shared service runs with


def test_a_throwing_piece_fails_fast_and_freezes_after_repeated_failures_until_unfrozen(
        shared_oven: OvenProcess) -> None:
    for attempt in range(FREEZE_AFTER):
        started = time.monotonic()
        accepted = submit(shared_oven, piece="throws", format="png", width=200 + attempt,
                          height=100)
        view = wait_for_job(shared_oven, accepted["id"], timeout=30)
        assert view["state"] == "failed", view
        assert "piece exploded on purpose" in view["error"], view
        assert view["attempts"] == 1  # the piece's own fault is not retried
        # Well under browser.ready_timeout_s (10 s): an uncaught error fails at once.
        assert time.monotonic() - started < 5

    response = post_grab(shared_oven, piece="throws", format="png", width=250, height=100)
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "frozen"
    assert "Retry-After" in response.headers

    frozen = httpx.get(f"{shared_oven.url}/frozen", timeout=10).json()["frozen"]
    assert [f["piece"] for f in frozen] == ["throws"]

    unfreeze = f"{shared_oven.url}/frozen/throws"
    assert httpx.delete(unfreeze, timeout=10).status_code == 401
    assert httpx.delete(unfreeze, headers={"Authorization": "Bearer wrong"},
                        timeout=10).status_code == 403
    response = httpx.delete(unfreeze, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                            timeout=10)
    assert response.status_code == 200, response.text
    assert httpx.get(f"{shared_oven.url}/frozen", timeout=10).json()["frozen"] == []
    after = post_grab(shared_oven, piece="throws", format="png", width=250, height=100)
    assert after.status_code == 202, after.text
    assert wait_for_job(shared_oven, after.json()["id"], timeout=30)["state"] == "failed"


def test_cancelling_a_running_grab_stops_it_and_leaves_no_extra_processes(
        shared_oven: OvenProcess) -> None:
    baseline = steady_renderer_count(shared_oven)
    accepted = submit(shared_oven, piece="anim", format="webp", width=300, height=170,
                      frames=200, fps=10, clock="real")
    job_id = accepted["id"]
    wait_until("the job to run", lambda: job(shared_oven, job_id)["state"] == "running",
               timeout=30)
    # The job view says when frame capture starts: the cancel lands during it, for certain.
    wait_until("the capture to be under way",
               lambda: job(shared_oven, job_id)["stage"] == "capture", timeout=30,
               interval=0.05)

    started = time.monotonic()
    response = httpx.delete(f"{shared_oven.url}/grabs/{job_id}", timeout=30,
                            headers={"X-Cancel-Token": accepted["cancel_token"]})
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "cancelled"
    assert time.monotonic() - started < 10  # long before the 20 s capture would end
    view = job(shared_oven, job_id)
    assert view["state"] == "cancelled" and view["result"] is None
    assert httpx.get(f"{shared_oven.url}/grabs/{job_id}/result", timeout=10).status_code == 409

    assert ffmpegs(shared_oven) == []  # never started: a cancel during encode is tests/service
    # Chromium replaces spare renderers as contexts close, so the count is what returns.
    wait_for_renderer_count(shared_oven, baseline)
    assert chromium_alive(shared_oven)
    # The service still captures after a cancel.
    accepted = submit(shared_oven, piece="still", format="png", width=120, height=90)
    assert wait_for_job(shared_oven, accepted["id"])["state"] == "complete"


def test_a_running_grab_reports_the_capture_stage(shared_oven: OvenProcess) -> None:
    accepted = submit(shared_oven, piece="anim", format="webp", width=302, height=170,
                      frames=60, fps=10, clock="real")
    seen: list[str] = []

    def finished() -> bool:
        view = job(shared_oven, accepted["id"])
        if view["stage"] and view["stage"] not in seen:
            seen.append(view["stage"])
        return view["state"] in ("complete", "failed", "cancelled")

    wait_until("the grab to finish", finished, timeout=60, interval=0.05)
    assert job(shared_oven, accepted["id"])["state"] == "complete"
    # 6 s of frames at 10 fps: the view has ample time to say it is capturing.
    assert "capture" in seen, seen
    assert seen.index("capture") < seen.index("encode"), seen


def chromium_alive(oven: OvenProcess) -> bool:
    return chromium_main(oven).status() != psutil.STATUS_ZOMBIE


def test_a_capture_past_its_deadline_fails_with_a_deadline_message_and_no_extra_processes(
        start_oven: StartOven) -> None:
    oven = start_oven({"queue": {"deadline_s": 3.0}})
    baseline = steady_renderer_count(oven)
    started = time.monotonic()
    accepted = submit(oven, piece="never-ready", format="png", width=200, height=120)
    view = wait_for_job(oven, accepted["id"], timeout=30)
    assert view["state"] == "failed", view
    assert "deadline" in view["error"], view
    assert time.monotonic() - started < 10  # the deadline, not the 10 s ready timeout
    assert ffmpegs(oven) == []
    wait_for_renderer_count(oven, baseline)
