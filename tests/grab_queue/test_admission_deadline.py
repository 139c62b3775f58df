"""Admission refuses a job that would wait past its deadline, before it is queued."""

from __future__ import annotations

import pytest

from oven.actors.grab_queue import Cancel, QueueFull
from tests.grab_queue.conftest import Scripts, StartQueue
from tests.grab_queue.stubs import Outcome, Script


def test_a_grab_that_would_wait_past_its_deadline_is_refused_at_the_door(
        start_queue: StartQueue) -> None:
    # One page; no service time measured yet, so the queue estimates 2 s a job: the first
    # queued job's estimate (2 s) is inside a 3 s deadline, the second's (4 s) is not. Before
    # this rule the second was admitted and failed "deadline passed" once claimed (a burst
    # admitted ~400 jobs, ~100 of which failed so).
    q = start_queue({"queue": {"deadline_s": 3.0, "max_queued": 50}},
                    scripts=Scripts(browser=Script().then(Outcome.HANG)))
    running = q.submit(width=100)
    q.browser.wait_calls(1)  # the only page is taken
    queued = q.submit(width=101)
    assert not queued.cached and queued.job["state"] == "queued"

    with pytest.raises(QueueFull, match=r"deadline \(3 s\)") as refused:
        q.submit(width=102)
    assert refused.value.status == 429 and refused.value.retry_after_s >= 1
    assert "full" in q.board.reasons()  # /ready says so too, as it does at max_queued

    # The queued job first: cancelling the running one frees the page, and the queued job
    # could be claimed and done before its own cancel arrived.
    q.system.ask("grab_queue", Cancel(queued.job["id"]), timeout=30)
    q.system.ask("grab_queue", Cancel(running.job["id"]), timeout=30)
    assert q.final(running.job["id"])["state"] == "cancelled"
    assert q.final(queued.job["id"])["state"] == "cancelled"
