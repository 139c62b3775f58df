"""A browser recycled by oven under a running capture (here: restart_after) costs that job
nothing: it is requeued with its attempt given back and completes."""

from __future__ import annotations

from tests.oven_process import StartOven
from tests.pipeline.grab_client import submit, wait_for_job


def test_a_capture_cut_short_by_a_recycle_completes_without_losing_an_attempt(
    start_oven: StartOven,
) -> None:
    # restart_after = 1: the first job to finish marks the browser for a recycle, which closes
    # it under the long capture still running beside it (after waiting 5 s for it).
    # The long capture runs on the real clock, 60 frames at 3 fps: 20 s of wall time whatever
    # the machine's speed, so the short job and the 5 s wait end well inside it. (A virtual-clock
    # capture is as fast as the machine: on a quiet one it ended inside the 5 s, uncut.)
    # A deadline that fits a loaded 2-core machine: the test is about attempts, not speed.
    oven = start_oven({"browser": {"pages": 2, "restart_after": 1},
                       "queue": {"interactive_reserved": 0, "deadline_s": 600}})
    long = submit(oven, piece="anim", format="mp4", width=640, height=360, frames=60, fps=3,
                  clock="real")
    wait_for_job(oven, long["id"], {"running"}, timeout=60)
    short = submit(oven, piece="still", format="png", width=320, height=200)
    assert wait_for_job(oven, short["id"], timeout=90)["state"] == "complete"

    done = wait_for_job(oven, long["id"], timeout=300)
    assert done["state"] == "complete", done
    assert done["attempts"] == 1, done
    assert "the browser was recycled" in oven.log
