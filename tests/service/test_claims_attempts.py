"""README "A grab": transient failures (a browser crash) retry up to `queue.max_attempts`; a job
out of attempts ends `failed` with the reason, every waiter is answered with it, and nothing is
left holding on: no ffmpeg, the page free for the next job, the capture key free for a new job.

The transient failure is real: Chromium's browser process is SIGKILLed during each attempt
(tests/pipeline/test_recovery.py shows one crash being retried to completion; here the crashes
outlast the attempts)."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import httpx
import psutil

from tests.oven_process import OvenProcess, StartOven
from tests.pipeline.grab_client import (
    chromium_main,
    ffmpegs,
    job,
    metric,
    submit,
    wait_for_job,
)
from tests.waiting import wait_until

MAX_ATTEMPTS = 2
# 20 s of real-clock frames: each attempt is still capturing when its browser is killed.
LONG = {"piece": "anim", "format": "webp", "width": 168, "height": 96, "frames": 200,
        "fps": 10, "clock": "real"}
SYNC_PATH = "/grab/webp/168/96/anim?frames=200&fps=10&clock=real"


def kill_the_browser_during_attempt(oven: OvenProcess, job_id: str, attempt: int,
                                    killed: list[psutil.Process]) -> None:
    """Wait until attempt `attempt` runs in a browser not yet killed, then SIGKILL it."""

    def running_on_a_new_browser() -> psutil.Process | None:
        view = job(oven, job_id)
        if view["state"] != "running" or view["attempts"] != attempt:
            return None
        if view.get("stage") != "capture":  # the page is released before the encode
            return None
        try:
            browser = chromium_main(oven)
        except AssertionError:  # relaunching: none or two for a moment
            return None
        return None if any(browser.pid == k.pid for k in killed) else browser

    browser = wait_until(f"attempt {attempt} to capture", running_on_a_new_browser, timeout=90)
    os.kill(browser.pid, signal.SIGKILL)
    killed.append(browser)


def test_a_job_out_of_attempts_fails_with_the_reason_answers_its_waiters_and_leaks_nothing(
        start_oven: StartOven) -> None:
    oven = start_oven({"browser": {"pages": 1},
                       "queue": {"max_attempts": MAX_ATTEMPTS, "interactive_reserved": 0,
                                 "wait_timeout_s": 300}})
    failed_before = metric(oven, "oven_grabs_total", {"format": "webp", "outcome": "failed"})
    accepted = submit(oven, **LONG)
    job_id = accepted["id"]

    # Two more waiters on the same job: a second identical POST attaches, a sync GET waits.
    attached = submit(oven, **LONG)
    assert attached["id"] == job_id, attached
    sync_answer: dict[str, Any] = {}

    def wait_synchronously() -> None:
        response = httpx.get(f"{oven.url}{SYNC_PATH}", timeout=300)
        sync_answer.update(status=response.status_code, body=response.json())

    waiter = threading.Thread(target=wait_synchronously, daemon=True)
    waiter.start()

    killed: list[psutil.Process] = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        kill_the_browser_during_attempt(oven, job_id, attempt, killed)

    view = wait_for_job(oven, job_id, timeout=120)
    assert view["state"] == "failed", view
    assert view["attempts"] == MAX_ATTEMPTS, view
    assert f"{MAX_ATTEMPTS} attempts" in view["error"], view
    assert "browser" in view["error"].lower(), view
    # The reason, not Playwright's attached browser log (Chromium's command line and stderr),
    # which is no client's business and made the error kilobytes long.
    assert "Browser logs" not in view["error"] and len(view["error"]) < 400, view["error"]

    waiter.join(60)
    assert not waiter.is_alive(), "the synchronous waiter was never answered"
    assert 400 <= sync_answer["status"] < 600, sync_answer
    assert sync_answer["body"]["error"]["code"] == "failed", sync_answer
    assert sync_answer["body"]["error"]["message"] == f"grab failed: {view['error']}", sync_answer
    assert metric(oven, "oven_grabs_total",
                  {"format": "webp", "outcome": "failed"}) == failed_before + 1

    # Nothing holds on: no encoder left running, no killed browser alive, and the one page and
    # the capture key are free (the same request makes a new job, which completes).
    assert ffmpegs(oven) == []
    assert not any(b.is_running() and b.status() != psutil.STATUS_ZOMBIE for b in killed)
    again = submit(oven, **{**LONG, "frames": 20, "fps": 10, "clock": "virtual"})
    assert wait_for_job(oven, again["id"], timeout=90)["state"] == "complete"
    retried = submit(oven, **LONG)
    assert retried["id"] != job_id and not retried.get("cached"), retried
    assert httpx.delete(f"{oven.url}/grabs/{retried['id']}", timeout=30, headers={
        "X-Cancel-Token": retried["cancel_token"]}).status_code == 200
