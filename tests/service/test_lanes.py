"""Lanes through a real `oven serve` (README, Architecture: one page reserved for the
interactive lane): background work never takes the reserved page, so an interactive grab
starts at once while background grabs wait."""

from __future__ import annotations

from typing import Any

import httpx

from tests.oven_process import StartOven
from tests.pipeline.grab_client import job, submit
from tests.waiting import wait_until

# 30 s of real-clock frames: a page stays taken while the test looks.
LONG = {"piece": "anim", "format": "webp", "height": 90, "frames": 300, "fps": 10,
        "clock": "real"}


def cancel(url: str, accepted: dict[str, Any]) -> None:
    response = httpx.delete(f"{url}/grabs/{accepted['id']}", timeout=30,
                            headers={"X-Cancel-Token": accepted["cancel_token"]})
    assert response.status_code == 200, response.text


def test_background_grabs_leave_the_reserved_page_to_an_interactive_grab(
        start_oven: StartOven) -> None:
    oven = start_oven({"browser": {"pages": 2}, "queue": {"interactive_reserved": 1}})
    background = [submit(oven, **LONG, width=160 + i, lane="background") for i in range(2)]
    try:
        wait_until("one background grab to run", lambda: [
            job(oven, b["id"])["state"] for b in background].count("running") == 1,
            timeout=60, interval=0.05)
        queued = [b for b in background if job(oven, b["id"])["state"] == "queued"]
        assert len(queued) == 1, "the second background grab took the reserved page"
        waiting = queued[0]
        interactive = submit(oven, piece="still", format="png", width=170, height=90)
        seen: set[str] = set()

        def interactive_done() -> bool:
            seen.add(job(oven, waiting["id"])["state"])
            return bool(job(oven, interactive["id"])["state"] == "complete")

        wait_until("the interactive grab to complete on the reserved page", interactive_done,
                   timeout=60, interval=0.05)
        # Throughout, and after: the second background grab never took the reserved page.
        seen.add(job(oven, waiting["id"])["state"])
        assert seen == {"queued"}, seen
    finally:
        for accepted in background:
            cancel(oven.url, accepted)
