"""A split deployment on MongoDB (nx-27017) and one bucket (moto): an `api` instance admits
and answers, a `worker` claims and runs. Real `oven serve` processes, real Chromium."""

from __future__ import annotations

import uuid

import httpx

from tests.oven_process import StartOven
from tests.pipeline.grab_client import submit, wait_for_job
from tests.pipeline.test_backends import moto, nx
from tests.storage.moto_s3 import MotoServer
from tests.store.nx_server import NxServer

from .split import capture_processes, mongo_config, ready, role, status, wait_ready

__all__ = ["moto", "nx"]  # module-scoped fixtures shared with test_backends


def test_an_api_and_a_worker_sharing_mongodb_and_a_bucket_complete_grabs_the_api_never_runs(
        start_oven: StartOven, nx: NxServer, moto: MotoServer) -> None:
    database = f"oven_roles_{uuid.uuid4().hex[:8]}"
    api = start_oven(role(mongo_config(nx, moto, database, "api-1"), "api"))
    assert ready(api).json()["reasons"] == ["no_workers"]
    early = submit(api, piece="still", format="png", width=320, height=200)
    assert early["state"] == "queued", early

    worker = start_oven(role(mongo_config(nx, moto, database, "worker-1"), "worker"))
    wait_ready(api)
    ids = [early["id"], *(submit(api, piece="still", format="png", width=300 + 8 * i,
                                 height=160)["id"] for i in range(3))]
    for job_id in ids:
        assert wait_for_job(api, job_id, timeout=120)["state"] == "complete"
    response = httpx.get(f"{api.url}/grabs/{ids[-1]}/result", follow_redirects=True,
                         timeout=30)
    assert response.status_code == 200 and response.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert capture_processes(api) == [] and capture_processes(worker)
    assert httpx.get(f"{worker.url}/grabs/{ids[0]}", timeout=10).status_code == 404
    seen = {i["id"]: i["role"] for i in status(api)["sections"]["instances"]}
    assert seen == {"api-1": "api", "worker-1": "worker"}, seen
