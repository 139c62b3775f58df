"""The Baker's counts appear in /status beside the other actors' sections."""

from __future__ import annotations

import httpx

from tests.oven_process import OvenProcess
from tests.waiting import wait_until

from .bake_kit import frames, zip_bytes
from .conftest import MAX_ACTIVE, bake_section


def test_status_shows_the_bakes_receiving_queued_running_and_the_limit(
        bake_oven: OvenProcess) -> None:
    wait_until("no bake in flight", lambda: bake_section(bake_oven)["running"] == 0, timeout=60)
    assert bake_section(bake_oven) == {"receiving": 0, "queued": 0, "running": 0,
                                       "max_active": MAX_ACTIVE}
    posted = httpx.post(f"{bake_oven.url}/bakes", timeout=60,
                        files={"archive": ("tape.zip", zip_bytes(frames(12)), "application/zip")})
    assert posted.status_code == 202, posted.text
    bake_id = posted.json()["id"]
    wait_until("the bake to end", lambda: httpx.get(
        f"{bake_oven.url}/bakes/{bake_id}", timeout=10).json()["state"] in ("complete", "failed"),
        timeout=120)
    assert bake_section(bake_oven) == {"receiving": 0, "queued": 0, "running": 0,
                                       "max_active": MAX_ACTIVE}
