"""README "A grab" and Hostile input: a piece failing `freeze_after` times in a row is frozen for
`freeze_for_s`; a freeze that runs out starts the count anew. Through a real `oven serve` with
a short freeze: the freeze is seen (409 `frozen` with a Retry-After within the freeze, listed in
GET /frozen), it thaws on its own with no admin, and after the thaw one failure does not freeze
again while `freeze_after` failures do. (The admin unfreeze is tests/pipeline/test_failures.py.)"""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.oven_process import OvenProcess, StartOven
from tests.pipeline.grab_client import post_grab, submit, wait_for_job
from tests.waiting import wait_until

FREEZE_AFTER = 2
# Long enough to see the freeze on a loaded machine, short enough to wait out.
FREEZE_FOR_S = 6


def fails_on_its_own(oven: OvenProcess, width: int) -> None:
    """A grab of the throwing piece (its own capture key, by width) that is admitted and fails."""
    accepted = submit(oven, piece="throws", format="png", width=width, height=100)
    view = wait_for_job(oven, accepted["id"], timeout=60)
    assert view["state"] == "failed" and "piece exploded on purpose" in view["error"], view


def frozen(oven: OvenProcess) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = httpx.get(f"{oven.url}/frozen", timeout=10).json()["frozen"]
    return listed


def assert_refused_as_frozen(oven: OvenProcess, width: int) -> None:
    refused = post_grab(oven, piece="throws", format="png", width=width, height=100)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "frozen", refused.text
    assert 1 <= int(refused.headers["Retry-After"]) <= FREEZE_FOR_S + 1, refused.headers


def test_a_frozen_piece_thaws_when_the_freeze_runs_out_and_its_count_starts_anew(
        start_oven: StartOven) -> None:
    oven = start_oven({"queue": {"freeze_after": FREEZE_AFTER, "freeze_for_s": FREEZE_FOR_S}})
    for n in range(FREEZE_AFTER):
        fails_on_its_own(oven, 200 + n)
    frozen_at = time.monotonic()
    assert_refused_as_frozen(oven, 210)
    assert [f["piece"] for f in frozen(oven)] == ["throws"]
    # Another piece is not touched by the freeze.
    still = submit(oven, piece="still", format="png", width=200, height=100)
    assert wait_for_job(oven, still["id"], timeout=60)["state"] == "complete"

    wait_until("the freeze to run out", lambda: frozen(oven) == [], timeout=FREEZE_FOR_S + 30)
    # Not before it was due (the listing is read after the refusal, so this is a lower bound).
    assert time.monotonic() - frozen_at >= FREEZE_FOR_S - 1

    # Thawed, with the count reset: one failure is not enough to freeze again...
    fails_on_its_own(oven, 220)
    assert frozen(oven) == []
    # ...and freeze_after failures in a row are.
    for n in range(1, FREEZE_AFTER):
        fails_on_its_own(oven, 230 + n)
    assert [f["piece"] for f in frozen(oven)] == ["throws"]
    assert_refused_as_frozen(oven, 240)
