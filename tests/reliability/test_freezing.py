"""Only a piece's own failures freeze it, and a frozen piece's queued jobs fail without a capture.

Both failed before: three jobs whose deadline passed while they waited in the queue froze their
(innocent) piece, and a job of a piece frozen while it was queued still ran its capture.
"""

from __future__ import annotations

import httpx

from tests.oven_process import StartOven
from tests.pipeline.grab_client import submit, wait_for_job

ADMIN = "freezing-test-token"


def _frozen(url: str) -> list[str]:
    return [f["piece"] for f in httpx.get(f"{url}/frozen", timeout=10).json()["frozen"]]


def test_jobs_whose_deadline_passed_in_the_queue_do_not_freeze_their_piece(
        start_oven: StartOven) -> None:
    oven = start_oven({"server": {"admin_token": ADMIN},
                       "browser": {"pages": 1, "ready_timeout_s": 60},
                       "queue": {"deadline_s": 30, "interactive_reserved": 0,
                                 "freeze_after": 2}})
    # never-ready holds the only page until its 30 s deadline (its ready timeout is longer).
    # The stills get 10 s deadlines, set once the blocker runs, so each passes while the page is
    # still held: with one deadline for all, the blocker's capture ended at its own deadline,
    # just before the stills' (a submission later), and a still claimed in between could still
    # run, the more likely the busier the machine. 10 s: admission refuses a job whose estimated
    # wait (2 s a job before any has finished, so 8 s for the fourth still) is longer.
    blocker = submit(oven, piece="never-ready", format="png", width=64, height=64)
    wait_for_job(oven, blocker["id"], {"running"}, timeout=60)
    config = oven.workdir / "oven.toml"
    config.write_text(config.read_text().replace("deadline_s = 30", "deadline_s = 10"))
    reload = httpx.post(f"{oven.url}/admin/reload",
                        headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
    assert reload.json()["applied"] == ["queue.deadline_s"], reload.text
    waiting = [submit(oven, piece="still", format="png", width=64 + i, height=64)
               for i in range(4)]
    views = [wait_for_job(oven, j["id"], timeout=60) for j in waiting]
    assert all(v["state"] == "failed" and "deadline passed while the job was queued"
               in v["error"] for v in views), views
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
