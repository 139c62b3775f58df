"""README Memory, "Pressure": above `soft_watermark` no new capture starts (/ready answers 503
`memory`, the queue still admits up to its bound) and the pool runs one page fewer; back below
it, captures resume on the whole pool. Through a real `oven serve` whose budget is set, by a
live reload, so that its own idle footprint sits in the middle of the soft band.

(tests/pipeline/test_memory_budget.py covers the hard watermark: a hog failed alone, a recycle.)"""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.oven_process import OvenProcess, StartOven
from tests.pipeline.grab_client import job, metric, post_grab, submit, wait_for_job
from tests.waiting import wait_until

ADMIN = "soft-watermark-token"
PAGES = 2
MAX_QUEUED = 2
ROOMY = 8 << 30
# A wide soft band: idle at 70 % of the budget is 20 % of it away from either watermark,
# far more than the footprint of an idle service moves.
SOFT, HARD, IDLE_SHARE = 0.5, 0.95, 0.7
PSS_INTERVAL_S = 0.5


def ready(oven: OvenProcess) -> httpx.Response:
    return httpx.get(f"{oven.url}/ready", timeout=10)


def memory(oven: OvenProcess) -> dict[str, Any]:
    section: dict[str, Any] = httpx.get(f"{oven.url}/status",
                                        timeout=10).json()["sections"]["memory"]
    return section


def set_budget(oven: OvenProcess, old: int, new: int) -> None:
    config = oven.workdir / "oven.toml"
    config.write_text(config.read_text().replace(f"budget_bytes = {old}",
                                                 f"budget_bytes = {new}"))
    reload = httpx.post(f"{oven.url}/admin/reload", timeout=10,
                        headers={"Authorization": f"Bearer {ADMIN}"})
    assert reload.json()["applied"] == ["memory.budget_bytes"], reload.text


def test_above_the_soft_watermark_no_capture_starts_the_queue_admits_to_its_bound_and_the_pool_shrinks(  # noqa: E501
        start_oven: StartOven) -> None:
    oven = start_oven({
        "server": {"admin_token": ADMIN},
        "browser": {"pages": PAGES},
        "queue": {"max_queued": MAX_QUEUED, "interactive_reserved": 0},
        "memory": {"budget_bytes": ROOMY, "soft_watermark": SOFT, "hard_watermark": HARD,
                   "pss_interval_s": PSS_INTERVAL_S},
    })
    assert metric(oven, "oven_pool_size") == PAGES
    idle = wait_until("a full memory sample", lambda: memory(oven)["tree_pss_bytes"],
                      timeout=30)
    budget = int(idle / IDLE_SHARE)
    set_budget(oven, ROOMY, budget)

    def soft() -> bool:
        answer = ready(oven)
        return answer.status_code == 503 and "memory" in answer.json()["reasons"]

    wait_until("/ready to report memory pressure", soft, timeout=30)
    assert memory(oven)["state"] == "soft"
    assert metric(oven, "oven_memory_pressure_state") == 1
    # One page fewer.
    wait_until("the pool to shrink by one", lambda: metric(oven, "oven_pool_size") == PAGES - 1,
               timeout=30)
    assert metric(oven, "oven_memory_actions_total", {"action": "shrink_pool"}) == 1
    assert metric(oven, "oven_memory_actions_total", {"action": "pause_captures"}) == 1

    # The queue still admits, up to its bound and no further.
    waiting = [submit(oven, piece="still", format="png", width=160 + n, height=90)
               for n in range(MAX_QUEUED)]
    refused = post_grab(oven, piece="still", format="png", width=170, height=90)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "busy"

    # No capture starts. A negative claim has no event to wait on: the window spans several
    # full PSS sweeps of the watch, each of which would have let captures go had the state
    # changed, and the jobs must be queued at every look.
    until = time.monotonic() + 6 * PSS_INTERVAL_S
    while time.monotonic() < until:
        assert [job(oven, w["id"])["state"] for w in waiting] == ["queued"] * MAX_QUEUED
        assert memory(oven)["state"] == "soft"
        time.sleep(0.2)
    assert metric(oven, "oven_pages_in_use") == 0

    # Below the watermark again: ready, the whole pool back, and the waiting jobs run.
    set_budget(oven, budget, ROOMY)
    wait_until("/ready to recover", lambda: ready(oven).status_code == 200, timeout=30)
    assert memory(oven)["state"] == "normal"
    wait_until("the pool to grow back", lambda: metric(oven, "oven_pool_size") == PAGES,
               timeout=30)
    assert metric(oven, "oven_memory_actions_total", {"action": "resume"}) == 1
    for accepted in waiting:
        assert wait_for_job(oven, accepted["id"], timeout=90)["state"] == "complete"
