"""Who may cancel a grab, through a real `oven serve`: the admin, or whoever holds the job's own
cancel token (given once, in the answer to the submission that created the job). Callers that
attached to a job someone else submitted, and everyone reading /grab-status, get no token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.oven_process import OvenProcess, StartOven
from tests.pipeline.grab_client import job, submit, wait_for_job
from tests.waiting import wait_until

from .conftest import ADMIN_TOKEN

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
# 30 s of real-time animation: long enough to be cancelled while it runs.
LONG = {"piece": "anim", "format": "webp", "frames": 300, "fps": 10, "clock": "real"}


def cancel(oven: OvenProcess, job_id: str, *, headers: dict[str, str] | None = None,
           token: str | None = None) -> httpx.Response:
    params = {"token": token} if token is not None else None
    return httpx.delete(f"{oven.url}/grabs/{job_id}", headers=headers, params=params,
                        timeout=30)


@pytest.fixture
def long_jobs(edge_oven: OvenProcess) -> Iterator[list[dict[str, Any]]]:
    """A running job and one queued behind it (the service has one page); both are cancelled
    by the admin afterwards, whatever the test did."""
    running = submit(edge_oven, **LONG, width=301, height=171)
    wait_until("the first job to run",
               lambda: job(edge_oven, running["id"])["state"] == "running", timeout=60)
    queued = submit(edge_oven, **LONG, width=302, height=172)
    assert queued["state"] == "queued", queued
    yield [running, queued]
    for accepted in (queued, running):
        assert cancel(edge_oven, accepted["id"], headers=ADMIN).status_code == 200


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "forbidden"
    assert "cancel token" in error["message"] and "admin token" in error["message"]


def test_a_grab_cannot_be_cancelled_without_its_token_or_the_admin_token(
        edge_oven: OvenProcess, long_jobs: list[dict[str, Any]]) -> None:
    running, queued = long_jobs
    for accepted in long_jobs:
        job_id = accepted["id"]
        _refused(cancel(edge_oven, job_id))
        _refused(cancel(edge_oven, job_id, headers={"x-cancel-token": "guess"}))
        _refused(cancel(edge_oven, job_id, token=""))
        _refused(cancel(edge_oven, job_id, headers={"authorization": "Bearer wrong"}))
        _refused(cancel(edge_oven, job_id,
                        headers={"authorization": f"Bearer {accepted['cancel_token']}"}))
    # One job's token is no use on another job.
    _refused(cancel(edge_oven, running["id"], headers={"x-cancel-token": queued["cancel_token"]}))
    _refused(cancel(edge_oven, queued["id"], token=running["cancel_token"]))
    assert job(edge_oven, running["id"])["state"] == "running"
    assert job(edge_oven, queued["id"])["state"] == "queued"


def test_the_cancel_token_of_the_submission_cancels_a_running_and_a_queued_grab(
        edge_oven: OvenProcess, long_jobs: list[dict[str, Any]]) -> None:
    running, queued = long_jobs
    assert isinstance(running["cancel_token"], str) and len(running["cancel_token"]) >= 32
    answer = cancel(edge_oven, queued["id"], token=queued["cancel_token"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "cancelled"
    answer = cancel(edge_oven, running["id"],
                    headers={"x-cancel-token": running["cancel_token"]})
    assert answer.status_code == 200, answer.text
    assert wait_for_job(edge_oven, running["id"])["state"] == "cancelled"
    # Cancelling again is no error: the job is final, its view says so.
    again = cancel(edge_oven, running["id"], token=running["cancel_token"])
    assert again.status_code == 200 and again.json()["state"] == "cancelled"


def test_the_admin_token_cancels_any_grab(edge_oven: OvenProcess,
                                          long_jobs: list[dict[str, Any]]) -> None:
    for accepted in long_jobs:
        answer = cancel(edge_oven, accepted["id"], headers=ADMIN)
        assert answer.status_code == 200, answer.text
        assert wait_for_job(edge_oven, accepted["id"])["state"] == "cancelled"


def test_a_caller_attached_to_someone_elses_job_gets_no_cancel_token(
        edge_oven: OvenProcess, long_jobs: list[dict[str, Any]]) -> None:
    running, queued = long_jobs
    same = submit(edge_oven, **LONG, width=302, height=172)  # the queued job's request
    assert same["attached"] is True and same["id"] == queued["id"]
    assert same["cancel_token"] is None
    # The same request over the waiting route answers 202 without a token too.
    sync = httpx.get(f"{edge_oven.url}/grab/webp/301/171/anim",
                     params={"frames": 300, "fps": 10, "clock": "real", "nowait": 1}, timeout=30)
    assert sync.status_code == 202, sync.text
    assert sync.json()["id"] == running["id"] and sync.json()["cancel_token"] is None


def test_no_view_of_a_job_shows_its_cancel_token(edge_oven: OvenProcess,
                                                 long_jobs: list[dict[str, Any]]) -> None:
    views = [httpx.get(f"{edge_oven.url}/grab-status", timeout=10).text,
             httpx.get(f"{edge_oven.url}/status", timeout=10).text]
    views += [httpx.get(f"{edge_oven.url}/grabs/{a['id']}", timeout=10).text for a in long_jobs]
    for accepted in long_jobs:
        assert accepted["id"] in views[0]
        assert all(accepted["cancel_token"] not in view for view in views)
    assert all("cancel" not in view.replace("cancelled", "") for view in views)
    assert all(a["cancel_token"] not in edge_oven.log for a in long_jobs)


def test_a_grab_submitted_over_the_waiting_route_gets_a_cancel_token(
        edge_oven: OvenProcess, long_jobs: list[dict[str, Any]]) -> None:
    answer = httpx.get(f"{edge_oven.url}/grab/webp/303/173/anim",
                       params={"frames": 300, "fps": 10, "clock": "real", "nowait": 1},
                       timeout=30)
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert accepted["attached"] is False
    cancelled = cancel(edge_oven, accepted["id"], token=accepted["cancel_token"])
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"


def test_an_unknown_grab_is_404_and_a_cached_answer_has_no_token(
        edge_oven: OvenProcess) -> None:
    assert cancel(edge_oven, "0" * 32, headers=ADMIN).status_code == 404
    assert cancel(edge_oven, "0" * 32, token="anything").status_code == 404
    still = {"piece": "still", "format": "png", "width": 41, "height": 41}
    first = submit(edge_oven, **still)
    assert wait_for_job(edge_oven, first["id"])["state"] == "complete"
    hit = httpx.post(f"{edge_oven.url}/grabs", json=still, timeout=30)
    assert hit.status_code == 200 and hit.json()["cached"] is True
    assert hit.json()["cancel_token"] is None


def test_without_an_admin_token_configured_the_job_token_still_cancels(
        start_oven: StartOven) -> None:
    oven = start_oven({"browser": {"pages": 1}})
    accepted = submit(oven, **LONG, width=304, height=174)
    _refused(cancel(oven, accepted["id"], headers={"authorization": "Bearer anything"}))
    answer = cancel(oven, accepted["id"], headers={"x-cancel-token": accepted["cancel_token"]})
    assert answer.status_code == 200, answer.text
    assert wait_for_job(oven, accepted["id"])["state"] == "cancelled"
