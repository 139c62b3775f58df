"""Only a piece's own failures freeze it, and a frozen piece's queued jobs fail without a capture.

Both failed before: three jobs whose deadline passed while they waited in the queue froze their
(innocent) piece, and a job of a piece frozen while it was queued still ran its capture.
"""

from __future__ import annotations

import httpx

from tests.oven_process import StartOven
from tests.pipeline.grab_client import submit, wait_for_job


def _frozen(url: str) -> list[str]:
    return [f["piece"] for f in httpx.get(f"{url}/frozen", timeout=10).json()["frozen"]]


def test_jobs_whose_deadline_passed_in_the_queue_do_not_freeze_their_piece(
        start_oven: StartOven) -> None:
    oven = start_oven({"browser": {"pages": 1, "ready_timeout_s": 30},
                       "queue": {"deadline_s": 10, "interactive_reserved": 0,
                                 "freeze_after": 2}})
    # never-ready holds the only page until its deadline; the stills behind it run out of time.
    # 10 s: admission refuses a job whose estimated wait (2 s a job before any has finished,
    # so 8 s for the fourth still) is longer than the deadline.
    blocker = submit(oven, piece="never-ready", format="png", width=64, height=64)
    waiting = [submit(oven, piece="still", format="png", width=64 + i, height=64)
               for i in range(4)]
    views = [wait_for_job(oven, j["id"], timeout=60) for j in waiting]
    assert all(v["state"] == "failed" and "deadline" in v["error"] for v in views), views
    assert wait_for_job(oven, blocker["id"], timeout=60)["state"] == "failed"
    assert "still" not in _frozen(oven.url)
    after = submit(oven, piece="still", format="png", width=32, height=32)
    assert wait_for_job(oven, after["id"], timeout=60)["state"] == "complete"


def test_a_job_of_a_piece_frozen_while_it_waited_fails_fast_without_a_capture(
        start_oven: StartOven) -> None:
    oven = start_oven({"browser": {"pages": 1, "ready_timeout_s": 2},
                       "queue": {"interactive_reserved": 0, "freeze_after": 1}})
    # never-ready holds the only page for its 2 s ready timeout, so both jobs of `throws` are
    # admitted before the first of them runs and freezes the piece.
    submit(oven, piece="never-ready", format="png", width=64, height=64)
    first = submit(oven, piece="throws", format="png", width=64, height=64)
    second = submit(oven, piece="throws", format="png", width=80, height=64)
    views = sorted((wait_for_job(oven, j["id"], timeout=60) for j in (first, second)),
                   key=lambda v: v["updated_at"])
    ran, skipped = views
    assert ran["state"] == "failed" and "threw" in ran["error"], ran
    assert skipped["state"] == "failed" and "frozen" in skipped["error"], skipped
    assert "capture_total" not in (skipped["timings"] or {}), skipped  # no capture was made
    assert "throws" in _frozen(oven.url)
