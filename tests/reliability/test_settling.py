"""Settling a job's outcome while the store is slow: no zombie runs, no torn settles.

The fault is real: the test holds the SQLite store's write lock from its own connection (as a
second process on the same file would), so oven's writes wait in SQLite's busy timeout, longer
than the GrabQueue's ask to the Store. Both tests failed before settles were shielded and
idempotent: the job stayed `running` in its view for good (the retried transition met the
first one's `complete` and raised InvalidTransition out of the run), and a DELETE that landed
mid-settle hung until its ask timed out.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.oven_process import OvenProcess, StartOven
from tests.pipeline.grab_client import job, submit, wait_for_job
from tests.waiting import wait_until

ADMIN = "settle-admin-token"
ASK_TIMEOUT_S = 1.5
HOLD_S = 3 * ASK_TIMEOUT_S  # the first write lands after its ask gave up, and a retry is queued


def _config() -> dict[str, dict[str, object]]:
    return {
        "server": {"admin_token": ADMIN},
        "browser": {"pages": 1},
        "queue": {"interactive_reserved": 0},
        # SQLite waits for the lock this long: longer than the hold, so writes land late
        # instead of failing.
        "store": {"timeout_s": 15, "cache_ttl_s": 0},
        "supervisor": {"ask_timeout_s": ASK_TIMEOUT_S},
    }


@contextmanager
def store_write_lock(oven: OvenProcess) -> Iterator[None]:
    path = Path(oven.workdir) / "data" / "oven.db"
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def test_a_settle_retried_after_its_ask_timed_out_still_settles_the_job(
        start_oven: StartOven) -> None:
    # busy-loop spins until the job's deadline; the failure is then the first write of the
    # settle, and it waits behind the lock.
    deadline_s = 4.0
    oven = start_oven({**_config(), "queue": {"interactive_reserved": 0,
                                              "deadline_s": deadline_s},
                       "browser": {"pages": 1, "ready_timeout_s": 30}})
    accepted = submit(oven, piece="busy-loop", format="png", width=160, height=90)
    wait_for_job(oven, accepted["id"], {"running"}, timeout=60)
    with store_write_lock(oven):
        time.sleep(deadline_s + HOLD_S)  # the settle's first ask times out and is retried
    view = wait_for_job(oven, accepted["id"], timeout=30)
    assert view["state"] == "failed" and "deadline" in view["error"], view
    status = httpx.get(f"{oven.url}/grab-status", timeout=10).json()
    assert status["running"] == [], status  # no run left behind
    assert "InvalidTransition" not in oven.log
    # The slot is free and the queue works: the next job runs to the end.
    again = submit(oven, piece="still", format="png", width=64, height=64)
    assert wait_for_job(oven, again["id"], timeout=60)["state"] == "complete"


def test_a_cancel_that_lands_while_the_outcome_is_written_answers_and_leaves_no_zombie(
        start_oven: StartOven) -> None:
    oven = start_oven(_config())
    accepted = submit(oven, piece="anim", format="webp", width=160, height=90, frames=8)
    wait_for_job(oven, accepted["id"], {"running"}, timeout=60)
    headers = {"Authorization": f"Bearer {ADMIN}"}
    with store_write_lock(oven):
        wait_until("the job to reach its upload stage",
                   lambda: job(oven, accepted["id"]).get("stage") == "upload", timeout=60)
        started = time.monotonic()
        # Sent while the settle waits for the store; answered once the lock goes.
        answers: list[httpx.Response] = []
        sender = threading.Thread(target=lambda: answers.append(httpx.delete(
            f"{oven.url}/grabs/{accepted['id']}", headers=headers, timeout=60)))
        sender.start()
        time.sleep(HOLD_S)
    sender.join(timeout=60)
    assert answers, f"DELETE never answered\n{oven.log[-5000:]}"
    took = time.monotonic() - started
    first = answers[0]
    assert first.status_code == 200, first.text
    # The attempt had ended: its outcome stands, and the cancel says so.
    assert first.json()["state"] == "complete", first.json()
    assert took < HOLD_S + 15, f"DELETE took {took:.1f} s"
    second = httpx.delete(f"{oven.url}/grabs/{accepted['id']}", headers=headers, timeout=10)
    assert second.status_code == 200 and second.json()["state"] == "complete", second.text
    status = httpx.get(f"{oven.url}/grab-status", timeout=10).json()
    assert status["running"] == [], status
