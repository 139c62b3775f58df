"""The old housekeeping routes against a real `oven serve`: POST /grab-cleanup and /grab-clear
(admin, oven's cancel) and the frozen list, GET /api/frozen and DELETE /api/frozen/{piece}."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.oven_process import OvenProcess, running_oven
from tests.pipeline.grab_client import submit, wait_for_job

ADMIN_TOKEN = "compat-admin-token-5e1"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
STALE_AFTER_S = 3.0


@pytest.fixture(scope="module")
def oven(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvenProcess]:
    config: dict[str, dict[str, Any]] = {
        "server": {"admin_token": ADMIN_TOKEN},
        # One page, held by never-ready for as long as a test needs; one failure freezes.
        "browser": {"pages": 1, "ready_timeout_s": 60},
        "queue": {"interactive_reserved": 0, "freeze_after": 1, "max_attempts": 1},
        "compat.grabs": {"stale_after_s": STALE_AFTER_S},
    }
    with running_oven(tmp_path_factory.mktemp("compat-admin"), config) as oven:
        yield oven


def post(oven: OvenProcess, path: str, **kw: Any) -> httpx.Response:
    return httpx.post(f"{oven.url}{path}", timeout=60, **kw)


@pytest.mark.parametrize("path", ["/grab-cleanup", "/grab-clear"])
def test_cleanup_and_clear_need_the_admin_token(oven: OvenProcess, path: str) -> None:
    assert post(oven, path).status_code == 401
    wrong = post(oven, path, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "forbidden"


def test_cleanup_cancels_only_grabs_older_than_stale_after_s(oven: OvenProcess) -> None:
    old = submit(oven, piece="never-ready", format="png", width=64, height=64)
    wait_for_job(oven, old["id"], {"running"})
    time.sleep(STALE_AFTER_S + 0.5)  # the only way to make a job old is to let time pass
    fresh = submit(oven, piece="still", format="png", width=65, height=64)
    answer = post(oven, "/grab-cleanup", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is True and body["cleaned"] == 1 and body["cancelled"] == [old["id"]]
    assert body["stale_after_s"] == STALE_AFTER_S and body["remaining"] >= 0
    assert wait_for_job(oven, old["id"])["state"] == "cancelled"
    assert wait_for_job(oven, fresh["id"])["state"] == "complete"


def test_clear_cancels_every_running_and_queued_grab(oven: OvenProcess) -> None:
    running = submit(oven, piece="never-ready", format="png", width=66, height=64)
    wait_for_job(oven, running["id"], {"running"})
    queued = [submit(oven, piece="still", format="png", width=67 + i, height=64)
              for i in range(2)]
    answer = post(oven, "/grab-clear", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is True
    assert (body["cleared"], body["queueCleared"]) == (1, 2), body
    assert sorted(body["cancelled"]) == sorted([running["id"], *(q["id"] for q in queued)])
    for accepted in (running, *queued):
        assert wait_for_job(oven, accepted["id"])["state"] == "cancelled"
    again = post(oven, "/grab-clear", headers=ADMIN).json()
    assert (again["cleared"], again["queueCleared"]) == (0, 0)


def test_a_frozen_piece_is_listed_in_the_old_shape_and_unfrozen_by_the_admin(
        oven: OvenProcess) -> None:
    failed = submit(oven, piece="throws", format="png", width=64, height=64)
    assert wait_for_job(oven, failed["id"])["state"] == "failed"
    listed = httpx.get(f"{oven.url}/api/frozen", timeout=10)
    assert listed.status_code == 200 and listed.headers["content-type"] == "application/json"
    [entry] = [f for f in listed.json()["frozen"] if f["piece"] == "throws"]
    assert set(entry) == {"piece", "attempts", "firstDetected", "lastAttempt", "error",
                          "frozenUntil"}
    assert entry["attempts"] == 1 and entry["error"]
    now_ms = time.time() * 1000
    assert entry["lastAttempt"] <= now_ms < entry["frozenUntil"]
    anonymous = httpx.delete(f"{oven.url}/api/frozen/throws", timeout=10)
    assert anonymous.status_code == 401
    unfrozen = httpx.delete(f"{oven.url}/api/frozen/throws", headers=ADMIN, timeout=10)
    assert unfrozen.status_code == 200
    assert unfrozen.json() == {"success": True, "piece": "throws", "unfrozen": True}
    assert all(f["piece"] != "throws" for f in
               httpx.get(f"{oven.url}/api/frozen", timeout=10).json()["frozen"])
    # As the old service did, unfreezing what is not frozen succeeds, saying so.
    again = httpx.delete(f"{oven.url}/api/frozen/throws", headers=ADMIN, timeout=10)
    assert again.json() == {"success": True, "piece": "throws", "unfrozen": False}
    code = httpx.delete(f"{oven.url}/api/frozen/$roz", headers=ADMIN, timeout=10)
    assert code.status_code == 200 and code.json()["piece"] == "$roz"


@pytest.mark.parametrize("name", ["%2e%2e", "a%00", "%7Bpiece%7D", "$$x", "a" * 65,
                                  "r%C3%B6z", "a%20b"])
def test_unfreezing_a_name_that_is_no_piece_is_422(oven: OvenProcess, name: str) -> None:
    response = httpx.delete(f"{oven.url}/api/frozen/{name}", headers=ADMIN, timeout=10)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith("piece:")


@pytest.mark.parametrize("method, path", [("GET", "/grab-cleanup"), ("GET", "/grab-clear"),
                                          ("POST", "/api/frozen"), ("PUT", "/api/frozen/x"),
                                          ("GET", "/api/frozen/x")])
def test_wrong_methods_are_405_json(oven: OvenProcess, method: str, path: str) -> None:
    response = httpx.request(method, f"{oven.url}{path}", timeout=10)
    assert response.status_code == 405, response.text
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_nothing_failed_inside_the_service(oven: OvenProcess) -> None:
    assert "unhandled error" not in oven.log and "Traceback" not in oven.log
