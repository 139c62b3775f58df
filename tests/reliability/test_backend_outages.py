"""The S3 endpoint and the MongoDB store go away for a while and come back on the same port.

tests/pipeline/test_upload_pending.py already proves one grab parks in upload_pending behind a
refusing TCP forwarder; here the real S3 server is stopped for 30 s with several jobs finishing,
and the store server itself is stopped under a running job.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.oven_process import OvenProcess, StartOven
from tests.pipeline.grab_client import job, metric, post_grab, submit, wait_for_job
from tests.storage.moto_s3 import BUCKET, MotoServer, port_accepts, start_moto
from tests.store.nx_server import NX_27017, NxServer, start_nx
from tests.waiting import wait_until

S3_OUTAGE_S = 30.0
SIGNATURES = {"png": b"\x89PNG", "jpeg": b"\xff\xd8\xff", "webp": b"RIFF"}


# moto keeps buckets in memory, and a real S3 outage does not delete the bucket: the new server
# holds it before it accepts a connection. Put back over HTTP once the port listened, it left a
# window in which a parked upload's retry was answered NoSuchBucket, a permanent answer that
# rightly fails the job (under load, one job in a run failed so).
MOTO_WITH_BUCKET = """
import sys
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.server import main
s3_backends[DEFAULT_ACCOUNT_ID]["aws"].create_bucket(sys.argv[1], "us-east-1")
main(sys.argv[2:])
"""


def restart_moto(old: MotoServer, log_path: Path) -> MotoServer:
    """A new moto server on the port the old one had, so the service's endpoint is unchanged,
    holding the bucket from its first answer on."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", MOTO_WITH_BUCKET, BUCKET, "-H", "127.0.0.1",
             "-p", str(old.port)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = MotoServer(process, old.port)
    wait_until("moto to listen again", lambda: port_accepts(old.port), timeout=15)
    assert httpx.head(f"{server.endpoint}/{BUCKET}", timeout=10).status_code == 200
    return server


def why_not_complete(oven: OvenProcess, views: list[dict[str, Any]]) -> str:
    """Each job that did not complete: its error, attempts and history, and the lines of the
    service's log that name it, so an intermittent failure says what happened."""
    lines = oven.log.splitlines()
    parts = []
    for view in views:
        if view["state"] == "complete":
            continue
        named = [line for line in lines if view["id"] in line]
        parts.append(f"job {view['id']} {view['state']}: error={view.get('error')!r} "
                     f"attempts={view.get('attempts')} history={view.get('history')}\n"
                     + "\n".join(line[:400] for line in named[-15:]))
    return "\n".join(parts)


def restart_nx(old: NxServer) -> NxServer:
    """nx-27017 again on the same port and data dir, as a store host coming back."""
    port = old.uri.rsplit(":", 1)[1]
    argv = [str(NX_27017), "--host", "127.0.0.1", "--port", port,
            "--pid-file", str(old.workdir / "nx.pid"), "--data-dir", str(old.workdir / "data"),
            "--log-file", str(old.workdir / "nx.log")]
    with (old.workdir / "nx.out").open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = NxServer(proc, old.uri, old.workdir)
    wait_until("nx-27017 to listen again", lambda: port_accepts(int(port)), timeout=20)
    return server


@pytest.fixture
def moto(tmp_path: Path) -> Iterator[list[MotoServer]]:
    """A list holding the running server, so a test can swap in the restarted one."""
    servers = [start_moto(tmp_path / "moto.log")]
    try:
        yield servers
    finally:
        servers[-1].stop()


@pytest.fixture
def nx(tmp_path: Path) -> Iterator[list[NxServer]]:
    servers = [start_nx(tmp_path / "nx")]
    try:
        yield servers
    finally:
        servers[-1].stop()


def test_jobs_finishing_while_s3_is_down_for_30_s_wait_in_upload_pending_and_none_is_lost(
        moto: list[MotoServer], start_oven: StartOven, tmp_path: Path) -> None:
    server = moto[0]
    oven = start_oven({
        "queue": {"upload_retry_s": 1.0},
        "storage": {"backend": "s3"},
        "storage.s3": {"endpoint_url": server.endpoint, "bucket": BUCKET, "region": "us-east-1",
                       "path_style": True, "create_bucket": True, "access_key_id": "testing",
                       "secret_access_key": "testing", "max_attempts": 1,
                       "connect_timeout_s": 1},
    })
    server.stop()  # nothing listens on the endpoint now (asserted by stop)
    down_until = time.monotonic() + S3_OUTAGE_S
    grabs: list[dict[str, Any]] = [
        {"piece": "still", "format": "png", "width": 160, "height": 90},
        {"piece": "still", "format": "jpeg", "width": 161, "height": 90},
        {"piece": "anim", "format": "webp", "width": 162, "height": 90, "frames": 8, "fps": 20},
    ]
    ids = [submit(oven, **body)["id"] for body in grabs]
    for job_id in ids:
        wait_for_job(oven, job_id, {"upload_pending"}, timeout=60)
    assert metric(oven, "oven_upload_pending") == len(ids)
    # For the rest of the outage, every job stays parked: none fails, none is dropped.
    while time.monotonic() < down_until:
        assert {job(oven, i)["state"] for i in ids} == {"upload_pending"}
        time.sleep(1)  # the outage is the fault under test: its length is the point

    moto.append(restart_moto(server, tmp_path / "moto.log"))
    views = [wait_for_job(oven, i, timeout=60) for i in ids]
    assert [v["state"] for v in views] == ["complete"] * len(ids), why_not_complete(oven, views)
    assert metric(oven, "oven_upload_pending") == 0
    for body, view in zip(grabs, views, strict=True):
        assert [h["state"] for h in view["history"]].count("complete") == 1
        result = httpx.get(f"{oven.url}/grabs/{view['id']}/result", follow_redirects=True,
                           timeout=30)
        assert result.status_code == 200
        assert result.content.startswith(SIGNATURES[body["format"]])
    listing = httpx.get(f"{moto[-1].endpoint}/{BUCKET}?list-type=2", timeout=10).text
    assert listing.count("<Key>") == len(ids), listing


def test_with_the_store_down_new_work_gets_503_and_a_running_job_is_recorded_when_it_returns(
        nx: list[NxServer], start_oven: StartOven) -> None:
    server = nx[0]
    oven = start_oven({"store": {"backend": "mongodb", "mongodb_uri": server.uri,
                                 "mongodb_database": "oven", "timeout_s": 2.0}})
    # 3 s of frames: long enough to take the store away while the capture runs.
    running = submit(oven, piece="anim", format="webp", width=300, height=170, frames=60,
                     fps=20, clock="real")
    wait_until("the job to run", lambda: job(oven, running["id"])["state"] == "running",
               timeout=60)
    server.stop()

    refused = wait_until("a new grab to be refused", lambda: (lambda r: r if r.status_code == 503
                         else None)(post_grab(oven, piece="still", format="png", width=140,
                                              height=90)), timeout=30, interval=0.5)
    assert refused.json()["error"]["code"] == "store_unavailable", refused.text
    assert int(refused.headers["Retry-After"]) > 0
    ready = httpx.get(f"{oven.url}/ready", timeout=10)
    assert ready.status_code == 503 and "store" in ready.json()["reasons"], ready.text
    assert httpx.get(f"{oven.url}/health", timeout=10).status_code == 200
    time.sleep(5)  # the outage: long enough for the running capture to finish meanwhile

    nx.append(restart_nx(server))
    view = wait_for_job(oven, running["id"], timeout=30)
    assert view["state"] == "complete", view
    assert [h["state"] for h in view["history"]].count("complete") == 1, view["history"]
    result = httpx.get(f"{oven.url}/grabs/{running['id']}/result", timeout=30)
    assert result.status_code == 200 and result.content.startswith(b"RIFF")
    # New work is accepted again.
    after = submit(oven, piece="still", format="png", width=141, height=90)
    assert wait_for_job(oven, after["id"], timeout=60)["state"] == "complete"
