"""A split deployment on one SQLite file and one results directory: an `api` instance admits
and answers, `worker` instances claim and run. Real `oven serve` processes, real Chromium."""

from __future__ import annotations

import collections
import time
from pathlib import Path

import httpx
import pytest

from oven.store import JobRecord, StoreSettings
from tests.oven_process import OvenProcess, StartOven
from tests.pipeline.grab_client import job, submit, wait_for_job
from tests.pipeline.test_cluster import read_jobs as cluster_jobs
from tests.waiting import wait_until

from .split import capture_processes, ready, role, sqlite_config, status, wait_ready

API_ACTORS = {"store", "uploader", "webhooks", "grab_queue", "memory"}
OPS_PATHS = ["/health", "/ready", "/metrics", "/status"]


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    path = tmp_path / "shared"
    path.mkdir()
    return path


def read_jobs(shared: Path) -> list[JobRecord]:
    return cluster_jobs(StoreSettings(sqlite_path=shared / "oven.db"), shared)


def start_pair(start_oven: StartOven, shared: Path) -> tuple[OvenProcess, OvenProcess]:
    api = start_oven(role(sqlite_config(shared, "api-1"), "api"))
    worker = start_oven(role(sqlite_config(shared, "worker-1"), "worker"))
    wait_ready(api)
    return api, worker


def test_grabs_submitted_to_an_api_instance_complete_on_a_worker_and_the_api_runs_no_browser(
        start_oven: StartOven, shared: Path) -> None:
    api, worker = start_pair(start_oven, shared)
    ids = [submit(api, piece="still", format="png", width=300 + 8 * i, height=160)["id"]
           for i in range(4)]
    for job_id in ids:
        view = wait_for_job(api, job_id, timeout=120)
        assert view["state"] == "complete", view
    records = {r.id: r for r in read_jobs(shared)}
    assert {records[i].owner for i in ids} == {"worker-1"}
    response = httpx.get(f"{api.url}/grabs/{ids[0]}/result", timeout=30)
    assert response.status_code == 200 and response.content[:8] == b"\x89PNG\r\n\x1a\n"

    assert capture_processes(api) == []
    assert capture_processes(worker)  # the worker's Chromium, seen the same way

    api_status, worker_status = status(api), status(worker)
    assert {a["name"] for a in api_status["actors"]} == API_ACTORS
    assert {"browser", "encoder", "grab_queue"} <= {a["name"] for a in worker_status["actors"]}
    assert "bakes" not in {a["name"] for a in worker_status["actors"]}
    assert api_status["sections"]["instance"]["role"] == "api"
    assert worker_status["sections"]["instance"]["role"] == "worker"
    assert "bakes" not in api_status["sections"]
    seen = {i["id"]: i for i in api_status["sections"]["instances"]}
    assert set(seen) == {"api-1", "worker-1"}, seen
    assert seen["api-1"]["role"] == "api" and seen["api-1"]["pages"] == 0
    assert seen["worker-1"]["role"] == "worker" and seen["worker-1"]["pages"] >= 1
    assert all(0 <= i["last_heartbeat_age_s"] < 10 for i in seen.values()), seen
    assert all(isinstance(i["running"], int) for i in seen.values()), seen


def test_a_worker_serves_only_health_ready_metrics_and_status(
        start_oven: StartOven, shared: Path) -> None:
    _, worker = start_pair(start_oven, shared)
    for path in OPS_PATHS:
        assert httpx.get(f"{worker.url}{path}", timeout=10).status_code == 200, path
    refused = [("GET", "/grabs/0123abcd"), ("POST", "/grabs"), ("GET", "/grab/still.png"),
               ("GET", "/dashboard"), ("GET", "/bakes"), ("POST", "/bakes"),
               ("GET", "/openapi.json"), ("POST", "/admin/reload"), ("GET", "/pty/sessions"),
               ("GET", "/")]
    for method, path in refused:
        response = httpx.request(method, f"{worker.url}{path}", timeout=10,
                                 json={"piece": "still"} if method == "POST" else None)
        assert response.status_code == 404, (method, path, response.status_code)
        error = response.json()["error"]
        assert error["code"] and error["message"], (method, path, error)


def test_an_api_instance_does_not_run_bakes_and_says_where_they_run(
        start_oven: StartOven, shared: Path) -> None:
    api, _ = start_pair(start_oven, shared)
    response = httpx.post(f"{api.url}/bakes", content=b"not read", timeout=10,
                          headers={"content-type": "application/x-tar"})
    assert response.status_code == 404, response.text
    message = response.json()["error"]["message"]
    assert "role" in message and '"all"' in message, message
    assert httpx.get(f"{api.url}/bakes", timeout=10).status_code == 200  # records still read


def test_an_api_alone_is_not_ready_with_no_workers_and_still_queues_grabs_a_worker_then_runs(
        start_oven: StartOven, shared: Path) -> None:
    api = start_oven(role(sqlite_config(shared, "api-1"), "api"))
    response = ready(api)
    assert response.status_code == 503 and "no_workers" in response.json()["reasons"]
    accepted = [submit(api, piece="still", format="png", width=320, height=160 + 8 * i)
                for i in range(3)]
    assert all(a["state"] == "queued" for a in accepted), accepted
    time.sleep(2)  # two heartbeats: nobody claims them meanwhile
    assert all(job(api, a["id"])["state"] == "queued" for a in accepted)

    worker = start_oven(role(sqlite_config(shared, "worker-1"), "worker"))
    wait_ready(api)
    for a in accepted:
        assert wait_for_job(api, a["id"], timeout=120)["state"] == "complete"

    assert worker.stop() == 0  # its last heartbeat ages: three heartbeats (3 s) later, gone
    wait_until("the api to notice its worker is gone",
               lambda: "no_workers" in ready(api).json()["reasons"], timeout=30)


def test_a_worker_killed_mid_run_is_replaced_and_every_job_completes_exactly_once(
        start_oven: StartOven, shared: Path) -> None:
    api, first = start_pair(start_oven, shared)
    # 2 s of frames each: the killed worker is caught mid-capture.
    ids = [submit(api, piece="anim", format="webp", width=200 + 2 * i, height=120, frames=40,
                  fps=20)["id"] for i in range(6)]

    def running_on_first() -> list[str]:
        return [j["id"] for j in status(first)["sections"]["grabs"]["running"]]

    caught = wait_until("the first worker to run a job", running_on_first, timeout=90)
    first.kill()
    second = start_oven(role(sqlite_config(shared, "worker-2"), "worker"))

    views = [wait_for_job(api, job_id, timeout=240) for job_id in ids]
    assert [v["state"] for v in views] == ["complete"] * len(ids), [
        (v["state"], v["error"]) for v in views]
    records = {r.id: r for r in read_jobs(shared)}
    assert sorted(records) == sorted(ids)
    assert len({r.capture_key for r in records.values()}) == len(ids)
    for record in records.values():
        completions = [h for h in record.history if h.state.value == "complete"]
        assert len(completions) == 1, record.history
    for job_id in caught:
        assert records[job_id].owner == "worker-2", records[job_id]
    owners = collections.Counter(r.owner for r in records.values())
    assert set(owners) <= {"worker-1", "worker-2"}, owners
    assert capture_processes(api) == [] and capture_processes(second)


def test_an_api_with_no_workers_queues_up_to_max_queued_and_refuses_past_it(
        start_oven: StartOven, shared: Path) -> None:
    config = role(sqlite_config(shared, "api-1"), "api")
    # A short deadline: with no worker there is no wait estimate to refuse on, only the bound.
    api = start_oven({**config, "queue": {"max_queued": 3, "deadline_s": 5.0}})
    for i in range(3):
        accepted = submit(api, piece="still", format="png", width=320, height=160 + 8 * i)
        assert accepted["state"] == "queued", accepted
    refused = httpx.post(f"{api.url}/grabs", timeout=10,
                         json={"piece": "still", "format": "png", "width": 320, "height": 400})
    assert refused.status_code == 429, refused.text
    assert "queue is full" in refused.json()["error"]["message"], refused.text
    assert set(ready(api).json()["reasons"]) == {"no_workers", "full"}


def test_a_reload_that_changes_the_role_is_reported_as_needing_a_restart_and_changes_nothing(
        start_oven: StartOven, shared: Path) -> None:
    config = {**role(sqlite_config(shared, "api-1"), "api"), "server": {"admin_token": "t" * 24}}
    api = start_oven(config)
    path = api.workdir / "oven.toml"
    path.write_text(path.read_text().replace('role = "api"', 'role = "all"'))
    answer = httpx.post(f"{api.url}/admin/reload", timeout=30,
                        headers={"Authorization": f"Bearer {'t' * 24}"})
    assert answer.status_code == 200, answer.text
    assert "cluster.role" in answer.json()["restart_required"], answer.json()
    accepted = submit(api, piece="still", format="png", width=320, height=160)

    def own_record() -> dict[str, object]:
        (record,) = [i for i in status(api)["sections"]["instances"] if i["this"]]
        return record

    time.sleep(2.5)  # two heartbeats after the reload, and time to claim, were it claiming
    assert own_record()["role"] == "api" and own_record()["pages"] == 0
    assert job(api, accepted["id"])["state"] == "queued"
    assert "no_workers" in ready(api).json()["reasons"]
    assert capture_processes(api) == []
