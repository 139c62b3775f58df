"""Queue backpressure, the README's headline: past `queue.max_queued` jobs waiting, POST /grabs
answers 429 with Retry-After at once and /ready says `full`; a drained queue admits again.

This replaces tests/test_edge.py, which got its 429 from a test actor standing in for the grab
queue; here the real queue's bound is filled through a real `oven serve`. (How each refusal
becomes status, code and Retry-After is tests/test_errors.py; a full mailbox refusing without
blocking is tests/test_mailbox.py.)"""

from __future__ import annotations

import time

import httpx

from tests.oven_process import StartOven
from tests.pipeline.grab_client import job, submit, wait_for_job
from tests.waiting import wait_until

MAX_QUEUED = 2
# 30 s of real-clock frames: the one page stays taken while the test fills the queue.
LONG = {"piece": "anim", "format": "webp", "height": 90, "frames": 300, "fps": 10,
        "clock": "real"}


def cancel(url: str, accepted: dict[str, str]) -> dict[str, str]:
    response = httpx.delete(f"{url}/grabs/{accepted['id']}", timeout=30,
                            headers={"X-Cancel-Token": accepted["cancel_token"]})
    assert response.status_code == 200, response.text
    view: dict[str, str] = response.json()
    return view


def test_a_full_queue_answers_429_with_retry_after_and_ready_says_full_until_it_drains(
        start_oven: StartOven) -> None:
    oven = start_oven({"browser": {"pages": 1},
                       # The one page may run any lane, so one job holds it.
                       "queue": {"max_queued": MAX_QUEUED, "interactive_reserved": 0}})
    running = submit(oven, **LONG, width=160)
    wait_until("the first grab to run", lambda: job(oven, running["id"])["state"] == "running",
               timeout=60)
    waiting = [submit(oven, **LONG, width=161 + i) for i in range(MAX_QUEUED)]
    assert [job(oven, w["id"])["state"] for w in waiting] == ["queued"] * MAX_QUEUED

    started = time.monotonic()
    refused = httpx.post(f"{oven.url}/grabs", json={**LONG, "width": 170}, timeout=30)
    took = time.monotonic() - started
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert f"the grab queue is full ({MAX_QUEUED} jobs waiting)" in error["message"], error
    assert error["code"] == "busy", error
    assert int(refused.headers["Retry-After"]) >= 1
    # The bound is the claim (a refusal never waits for room); 5 s is generous on a loaded
    # 2-core machine and still far below the 30 s the running job holds the page.
    assert took < 5, f"the 429 took {took:.2f} s"
    assert httpx.get(f"{oven.url}/grabs/{running['id']}", timeout=10).status_code == 200

    ready = httpx.get(f"{oven.url}/ready", timeout=10)
    assert ready.status_code == 503, ready.text
    assert any(reason.startswith("full") for reason in ready.json()["reasons"]), ready.json()
    assert "Retry-After" in ready.headers

    for accepted in [*waiting, running]:
        assert cancel(oven.url, accepted)["state"] == "cancelled"
    wait_until("/ready to answer ready again",
               lambda: httpx.get(f"{oven.url}/ready", timeout=10).status_code == 200,
               timeout=30)
    admitted = submit(oven, piece="still", format="png", width=170, height=90)
    assert wait_for_job(oven, admitted["id"])["state"] == "complete"
