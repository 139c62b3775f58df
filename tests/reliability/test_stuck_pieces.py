"""Pieces that never finish: a renderer spinning in JS and a page that never signals ready.

Each holds a page slot until the job's deadline; then the slot comes back, the renderer it used
is gone, and the next grab on the same single slot succeeds.
"""

from __future__ import annotations

import time

from tests.oven_process import StartOven
from tests.pipeline.grab_client import (
    ffmpegs,
    metric,
    steady_renderer_count,
    submit,
    wait_for_job,
    wait_for_renderer_count,
)
from tests.waiting import wait_until

DEADLINE_S = 4.0
READY_TIMEOUT_S = 10.0  # longer than the deadline: the deadline is what ends them


def test_a_busy_looping_piece_and_a_never_ready_piece_give_their_slot_back_at_the_deadline(
        start_oven: StartOven) -> None:
    # One page: if a stuck piece kept its slot, the grab after it could never run.
    oven = start_oven({
        "browser": {"pages": 1, "ready_timeout_s": READY_TIMEOUT_S},
        "queue": {"deadline_s": DEADLINE_S, "interactive_reserved": 0},
    })
    baseline = steady_renderer_count(oven)
    for piece in ("busy-loop", "never-ready"):
        started = time.monotonic()
        accepted = submit(oven, piece=piece, format="png", width=200, height=120)
        view = wait_for_job(oven, accepted["id"], timeout=60)
        took = time.monotonic() - started
        assert view["state"] == "failed", view
        assert "deadline" in view["error"], view
        assert view["attempts"] == 1, view  # the piece's fault: not retried
        # At the deadline, with room for a loaded machine; long before the ready timeout.
        assert took < READY_TIMEOUT_S, f"{piece} held its slot {took:.1f} s"
        wait_until("the page slot to be free", lambda: metric(oven, "oven_pages_in_use") == 0,
                   timeout=15)
        assert ffmpegs(oven) == []
        # The stuck renderer was closed with its context, not left spinning.
        wait_for_renderer_count(oven, baseline, timeout=20)

    accepted = submit(oven, piece="still", format="png", width=200, height=120)
    assert wait_for_job(oven, accepted["id"], timeout=60)["state"] == "complete"
