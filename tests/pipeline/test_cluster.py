"""Several instances on one store: shared queue, single-flight across instances, lease takeover.

Two real `oven serve` processes share one MongoDB (nx-27017) and one bucket (moto server), or
one SQLite file and one results directory.
"""

from __future__ import annotations

import asyncio
import collections
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
from pydantic import SecretStr

from oven.store import JobRecord, StoreSettings, make_store
from tests.oven_process import OvenProcess, StartOven
from tests.storage.moto_s3 import MotoServer
from tests.store.nx_server import NxServer
from tests.waiting import wait_until

from .grab_client import job, metric, submit, wait_for_job
from .test_backends import moto, nx, s3_config

__all__ = ["moto", "nx"]  # module-scoped fixtures shared with test_backends

# Short leases so a dead instance's jobs move on within seconds.
CLUSTER = {"lease_s": 3.0, "heartbeat_s": 1.0, "poll_s": 0.2}


def mongo_config(nx: NxServer, moto: MotoServer, database: str, instance: str
                 ) -> dict[str, dict[str, Any]]:
    return {
        "store": {"backend": "mongodb", "mongodb_uri": nx.uri, "mongodb_database": database},
        "cluster": {**CLUSTER, "instance_id": instance},
        **s3_config(moto),
    }


def sqlite_config(shared: Path, instance: str) -> dict[str, dict[str, Any]]:
    return {
        "store": {"sqlite_path": str(shared / "oven.db")},
        "storage": {"backend": "local", "local_dir": str(shared / "results")},
        "cluster": {**CLUSTER, "instance_id": instance},
    }


def read_jobs(settings: StoreSettings, data_dir: Path) -> list[JobRecord]:
    async def read() -> list[JobRecord]:
        store = make_store(settings, data_dir)
        await store.start()
        try:
            return await store.list_jobs(limit=10_000)
        finally:
            await store.close()

    return asyncio.run(read())


def run_forty_grabs(a: OvenProcess, b: OvenProcess) -> list[str]:
    """20 distinct captures, each asked of both instances: 40 submissions, round-robin."""
    ids: set[str] = set()
    for i in range(20):
        body = {"piece": "still", "format": "png", "width": 300 + 4 * i, "height": 160}
        for oven in (a, b) if i % 2 else (b, a):
            accepted = submit(oven, **body)
            if accepted["id"] is not None:  # None: answered from the cache
                ids.add(accepted["id"])
    for job_id in ids:
        for oven in (a, b):  # every job is visible and final from either instance
            view = wait_for_job(oven, job_id, timeout=180)
            assert view["state"] == "complete", view
    return sorted(ids)


def assert_shared_fairly(jobs: list[JobRecord], ids: list[str], a: OvenProcess,
                         b: OvenProcess) -> None:
    by_key = collections.Counter(j.capture_key for j in jobs)
    assert len(by_key) == 20 and set(by_key.values()) == {1}, by_key  # never captured twice
    assert sorted(j.id for j in jobs) == ids
    owners = collections.Counter(j.owner for j in jobs)
    assert set(owners) == {"a", "b"}, owners  # both instances did work
    done = [metric(o, "oven_grabs_total", {"format": "png", "outcome": "complete"})
            for o in (a, b)]
    assert sum(done) == 20 and min(done) >= 1, done
    for record in jobs:
        assert record.state.value == "complete" and record.attempts == 1, record


def test_forty_grabs_on_two_instances_sharing_mongodb_and_a_bucket_run_each_capture_once(
        start_oven: StartOven, nx: NxServer, moto: MotoServer) -> None:
    database = f"oven_cluster_{uuid.uuid4().hex[:8]}"
    a = start_oven(mongo_config(nx, moto, database, "a"))
    b = start_oven(mongo_config(nx, moto, database, "b"))

    ids = run_forty_grabs(a, b)

    jobs = read_jobs(StoreSettings(backend="mongodb", mongodb_uri=SecretStr(nx.uri),
                                   mongodb_database=database), a.workdir)
    assert_shared_fairly(jobs, ids, a, b)
    for oven in (a, b):  # a result is readable through either instance (302 to the bucket)
        response = httpx.get(f"{oven.url}/grabs/{ids[0]}/result", follow_redirects=True,
                             timeout=30)
        assert response.status_code == 200 and response.content[:8] == b"\x89PNG\r\n\x1a\n"
    status = httpx.get(f"{a.url}/status", timeout=10).json()
    assert status["sections"]["instance"]["id"] == "a"
    assert metric(b, "oven_instance_info", {"instance_id": "b"}) == 1


def test_forty_grabs_on_two_instances_sharing_one_sqlite_file_run_each_capture_once(
        start_oven: StartOven, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    a = start_oven(sqlite_config(shared, "a"))
    b = start_oven(sqlite_config(shared, "b"))

    ids = run_forty_grabs(a, b)

    jobs = read_jobs(StoreSettings(sqlite_path=shared / "oven.db"), shared)
    assert_shared_fairly(jobs, ids, a, b)
    for oven in (a, b):
        response = httpx.get(f"{oven.url}/grabs/{ids[-1]}/result", timeout=30)
        assert response.status_code == 200 and response.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_jobs_of_a_killed_instance_complete_on_the_other_once_their_leases_expire(
        start_oven: StartOven, nx: NxServer, moto: MotoServer) -> None:
    database = f"oven_cluster_{uuid.uuid4().hex[:8]}"
    a = start_oven(mongo_config(nx, moto, database, "a"))
    b = start_oven(mongo_config(nx, moto, database, "b"))
    # 2 s of frames each: the killed instance is caught mid-capture.
    ids = [submit(a if i % 2 else b, piece="anim", format="webp", width=200 + 2 * i,
                  height=120, frames=40, fps=20)["id"] for i in range(12)]

    def running_on_a() -> list[str]:
        grabs = httpx.get(f"{a.url}/status", timeout=10).json()["sections"]["grabs"]
        return [j["id"] for j in grabs["running"]]

    caught = wait_until("instance a to run a job", running_on_a, timeout=60)
    a.kill()
    killed_at = time.monotonic()

    views = [wait_for_job(b, job_id, timeout=240) for job_id in ids]
    assert [v["state"] for v in views] == ["complete"] * 12, [
        (v["state"], v["error"]) for v in views]
    jobs = {j.id: j for j in read_jobs(
        StoreSettings(backend="mongodb", mongodb_uri=SecretStr(nx.uri),
                      mongodb_database=database), b.workdir)}
    assert sorted(jobs) == sorted(ids)  # each exactly once in the store
    assert len({j.capture_key for j in jobs.values()}) == 12
    for job_id in caught:
        record = jobs[job_id]
        assert record.owner == "b" and record.attempts == 2, record
        assert any("lease of a expired" in (h.note or "") for h in record.history), record
    assert metric(b, "oven_leases_expired_total", {"instance_id": "b"}) >= len(caught)
    assert time.monotonic() - killed_at < 200
    assert job(b, caught[0])["result"]["frames"] == 40

    # The killed instance comes back: its boot sweep removes the Chromium it left behind.
    orphans = set(a.descendants)
    a.start()
    wait_until("the orphans of the killed instance to be swept",
               lambda: not [p for p in orphans if psutil.pid_exists(p)
                            and psutil.Process(p).status() != psutil.STATUS_ZOMBIE],
               timeout=30)
