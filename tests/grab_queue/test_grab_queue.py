"""The GrabQueue's own logic, in-process in seconds: the real queue and store, stub hops."""

from __future__ import annotations

from typing import Any

import pytest

from oven.actors.grab_queue import Cancel, PieceFrozen, QueueStatus
from oven.store._base import SideTables  # patched below: a race window held open
from tests.grab_queue.conftest import Scripts, StartQueue
from tests.grab_queue.stubs import Outcome, Script
from tests.waiting import wait_until


def test_identical_grabs_share_one_job_and_one_capture(start_queue: StartQueue) -> None:
    q = start_queue(scripts=Scripts(browser=Script().then(Outcome.HANG)))
    first = q.submit()
    q.browser.wait_calls(1)  # running: the capture hangs until cancelled
    second = q.submit()
    assert second.attached and not first.attached
    assert second.job["id"] == first.job["id"]
    assert second.cancel_token is None and first.cancel_token is not None

    q.system.ask("grab_queue", Cancel(first.job["id"]), timeout=30)
    assert q.final(first.job["id"])["state"] == "cancelled"
    again = q.submit()  # the key is free again: a new job, captured once more
    assert not again.attached and again.job["id"] != first.job["id"]
    assert q.final(again.job["id"])["state"] == "complete"
    assert q.browser.calls == [first.job["id"], again.job["id"]]


def test_a_completed_grab_answers_the_same_request_from_the_cache(
        start_queue: StartQueue) -> None:
    q = start_queue()
    done = q.final(q.submit().job["id"])
    assert done["state"] == "complete" and done["attempts"] == 1
    hit = q.submit()
    assert hit.cached and hit.job["result"]["storage_key"] == done["result"]["storage_key"]
    assert len(q.browser.calls) == 1


def test_a_key_completed_between_the_cache_look_up_and_the_insert_is_answered_from_the_cache(
        start_queue: StartQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    """The window the cluster test met under load (two jobs for one key): another instance's
    job completes after admission looked in the cache and before it inserts. The timing cannot
    be caused on demand, so the look-up is made to miss once, as it does when it runs just
    before the holder's result lands; the store, the insert and the queue are real."""
    q = start_queue()
    done = q.final(q.submit().job["id"])
    looked: list[str] = []
    real = SideTables.cache_get

    async def look_up_too_early(self: SideTables, key: str) -> dict[str, Any] | None:
        if not looked:
            looked.append(key)
            return None
        return await real(self, key)

    monkeypatch.setattr(SideTables, "cache_get", look_up_too_early)
    late = q.submit()
    assert looked, "the look-up did not run through the store's side tables"
    assert late.cached and not late.attached and late.job["id"] is None
    assert late.job["result"]["storage_key"] == done["result"]["storage_key"]
    assert len(q.browser.calls) == 1  # no second capture


def test_a_transient_failure_is_retried_and_the_retry_completes(start_queue: StartQueue) -> None:
    q = start_queue({"queue": {"max_attempts": 3}},
                    scripts=Scripts(browser=Script().then(Outcome.TRANSIENT)))
    job_id = q.submit().job["id"]
    done = q.final(job_id)
    assert done["state"] == "complete", done
    assert done["attempts"] == 2
    assert q.browser.calls == [job_id, job_id]
    assert any("retry: capture" in (h.get("note") or "") for h in done["history"]), done


def test_a_job_out_of_attempts_fails_and_says_how_many_it_had(start_queue: StartQueue) -> None:
    q = start_queue({"queue": {"max_attempts": 2}},
                    scripts=Scripts(browser=Script(default=Outcome.TRANSIENT)))
    job_id = q.submit().job["id"]
    done = q.final(job_id)
    assert done["state"] == "failed" and done["attempts"] == 2, done
    assert "after 2 attempts" in done["error"], done["error"]
    assert q.browser.calls == [job_id, job_id]


def test_a_transient_encode_failure_is_retried_from_the_capture(start_queue: StartQueue) -> None:
    q = start_queue(scripts=Scripts(encoder=Script().then(Outcome.TRANSIENT)))
    job_id = q.submit().job["id"]
    done = q.final(job_id)
    assert done["state"] == "complete" and done["attempts"] == 2, done
    assert q.browser.calls == [job_id, job_id] and q.encoder.calls == [job_id, job_id]


def test_a_piece_failing_permanently_n_times_is_frozen_and_thaws(start_queue: StartQueue) -> None:
    q = start_queue({"queue": {"freeze_after": 2, "freeze_for_s": 1, "max_attempts": 3}},
                    scripts=Scripts(browser=Script().then(Outcome.PERMANENT, Outcome.PERMANENT)))
    for width in (100, 101):  # two different grabs of the same piece
        done = q.final(q.submit(width=width).job["id"])
        assert done["state"] == "failed" and done["attempts"] == 1, done  # not retried
    with pytest.raises(PieceFrozen, match="'still' is frozen"):
        q.submit(width=102)
    assert len(q.browser.calls) == 2  # refused at admission: nothing captured

    def admitted() -> str | None:
        try:
            return q.submit(width=102).job["id"]
        except PieceFrozen:
            return None  # still frozen: the freeze is a point in time, polled for its end

    job_id = wait_until("the freeze to thaw", admitted, timeout=30, interval=0.05)
    assert q.final(job_id)["state"] == "complete"


def test_a_failure_of_ovens_own_encode_does_not_freeze_the_piece(start_queue: StartQueue) -> None:
    q = start_queue({"queue": {"freeze_after": 1, "max_attempts": 1}},
                    scripts=Scripts(encoder=Script().then(Outcome.PERMANENT)))
    done = q.final(q.submit(width=100).job["id"])
    assert done["state"] == "failed" and "encode" in done["error"], done
    assert q.final(q.submit(width=101).job["id"])["state"] == "complete"


def test_a_job_whose_lease_expires_is_requeued_and_another_instance_completes_it(
        start_queue: StartQueue) -> None:
    a = start_queue(name="queue-a", scripts=Scripts(browser=Script(default=Outcome.HANG)))
    job_id = a.submit().job["id"]
    a.browser.wait_calls(1)
    # The instance stops with the job running under its lease (as if its host were lost):
    # nobody renews the lease any more.
    a.stop()
    b = start_queue(name="queue-b")
    done = b.final(job_id, timeout=60)
    assert done["state"] == "complete", done
    assert b.browser.calls == [job_id]
    notes = [h.get("note") or "" for h in done["history"]]
    assert any("lease of queue-a expired; requeued" in n for n in notes), notes


def test_a_queued_job_cancelled_never_runs(start_queue: StartQueue) -> None:
    q = start_queue(scripts=Scripts(browser=Script().then(Outcome.HANG)))
    running = q.submit(width=100).job["id"]
    q.browser.wait_calls(1)  # the one page is taken
    queued = q.submit(width=101).job["id"]
    assert q.job(queued)["state"] == "queued"
    view = q.system.ask("grab_queue", Cancel(queued), timeout=30)
    assert view["state"] == "cancelled" and view["attempts"] == 0, view

    q.system.ask("grab_queue", Cancel(running), timeout=30)
    assert q.final(running)["state"] == "cancelled"
    assert q.browser.calls == [running]  # the cancelled one never reached the browser


def test_a_queued_job_cancelled_reads_cancelled_at_once_not_at_the_next_poll(
        start_queue: StartQueue) -> None:
    # A poll far away: the view of the job right after its cancel is the book's, not a poll's.
    q = start_queue({"cluster": {"poll_s": 60}},
                    scripts=Scripts(browser=Script().then(Outcome.HANG)))
    running = q.submit(width=100).job["id"]
    q.browser.wait_calls(1)
    queued = q.submit(width=101).job["id"]
    assert q.system.ask("grab_queue", Cancel(queued), timeout=30)["state"] == "cancelled"
    assert q.job(queued)["state"] == "cancelled"
    status = q.system.ask("grab_queue", QueueStatus(), timeout=10)
    assert all(jobs == [] for jobs in status["queued"].values()), status
    q.system.ask("grab_queue", Cancel(running), timeout=30)


@pytest.mark.parametrize("hop", ["browser", "encoder"])
def test_a_running_job_cancelled_stops_its_hop_where_it_runs(
        start_queue: StartQueue, hop: str) -> None:
    scripts = Scripts()
    getattr(scripts, hop).then(Outcome.HANG)
    q = start_queue(scripts=scripts)
    job_id = q.submit().job["id"]
    script: Script = getattr(q, hop)
    script.wait_calls(1)
    view = q.system.ask("grab_queue", Cancel(job_id), timeout=30)
    assert view["state"] == "cancelled", view
    script.wait_cancelled(job_id, timeout=10)  # told, and its hanging work was cancelled
    assert q.final(job_id)["state"] == "cancelled"
    assert q.uploader.calls == []


def test_a_queue_stopped_mid_capture_leaves_the_job_running_for_its_next_start(
        start_queue: StartQueue) -> None:
    a = start_queue(scripts=Scripts(browser=Script().then(Outcome.HANG)))
    job_id = a.submit().job["id"]
    a.browser.wait_calls(1)
    a.stop()
    again = start_queue(name="queue-a")  # same instance id: resumes its own job at once
    done = again.final(job_id, timeout=30)
    assert done["state"] == "complete", done
    notes = [h.get("note") or "" for h in done["history"]]
    assert any("requeued after queue-a restarted" in n for n in notes), notes
