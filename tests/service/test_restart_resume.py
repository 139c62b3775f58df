"""A restarted instance resumes its own running jobs at once (README, Architecture and Running
several instances: the instance id is hostname:port, stable across restarts).

The tests that restart on a new port get a new instance id, so their jobs come back only when
the lease runs out. Here the restart keeps the port and the lease is an hour: a job that comes
back within the test's minutes came back through the restart's own resume, not the lease."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.oven_process import OvenProcess, free_port
from tests.pipeline.grab_client import job, metric, submit, wait_for_job
from tests.pipeline.test_recovery import stored_jobs
from tests.pipeline.test_upload_pending import Outage
from tests.storage.moto_s3 import BUCKET, start_moto
from tests.waiting import wait_until

LEASE_S = 3600.0


def test_a_restart_on_the_same_port_requeues_its_own_running_job_without_waiting_for_the_lease(
        tmp_path: Path) -> None:
    port = free_port()
    config: dict[str, dict[str, Any]] = {"browser": {"pages": 1}, "cluster": {"lease_s": LEASE_S}}
    first = OvenProcess(tmp_path, config=config, port=port).start()
    second = OvenProcess(tmp_path, config=config, port=port)
    try:
        accepted = submit(first, piece="anim", format="webp", width=200, height=100,
                          frames=100, fps=10, clock="real")
        wait_until("the capture to be under way",
                   lambda: job(first, accepted["id"])["stage"] == "capture", timeout=60,
                   interval=0.05)
        first.kill()
        left = stored_jobs(tmp_path / "data", [accepted["id"]])[accepted["id"]]
        assert left.state.value == "running", left
        assert left.owner == f"{socket.gethostname()}:{port}", left.owner

        second.start()
        first.assert_no_leftovers(timeout=30)  # the dead run's Chromium was swept at boot
        # Well inside the hour-long lease: only the resume at start can have requeued it.
        view = wait_for_job(second, accepted["id"], timeout=120)
        assert view["state"] == "complete", view
        assert view["attempts"] == 2, view
        assert "resumed 1 of its jobs from the store" in second.log
    finally:
        for oven in (second, first):
            if oven.proc is not None and oven.proc.poll() is None:
                oven.stop()


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[Outage]:
    """A real S3 server behind a forwarder the test takes down (connection refused) and brings
    back on the same port. Not a restart of the server itself: moto keeps buckets in memory, and
    an upload retried between its start and the bucket being put back fails for good."""
    server = start_moto(tmp_path / "moto.log")
    outage = Outage(server.port)
    outage.up()
    try:
        yield outage
    finally:
        outage.down()
        server.stop()


@pytest.mark.parametrize("ending", ["killed", "stopped"])
def test_a_restart_on_the_same_port_uploads_its_own_parked_job_once_storage_is_back(
        tmp_path: Path, s3: Outage, ending: str) -> None:
    # The lease (an hour) and the parked takeover (a day) are far beyond the test's minutes:
    # only the restarted instance's resume can pick the parked upload up again.
    port, endpoint = free_port(), f"http://127.0.0.1:{s3.port}"
    # The bucket exists beforehand and oven does not create it: with create_bucket, oven serve
    # looks the bucket up at start and refuses to start at all while the endpoint is down.
    httpx.put(f"{endpoint}/{BUCKET}", timeout=10).raise_for_status()
    config: dict[str, dict[str, Any]] = {
        "browser": {"pages": 1},
        "cluster": {"lease_s": LEASE_S, "parked_takeover_s": 86400},
        "queue": {"upload_retry_s": 0.5},
        "storage": {"backend": "s3"},
        "storage.s3": {"endpoint_url": endpoint, "bucket": BUCKET, "region": "us-east-1",
                       "path_style": True, "create_bucket": False, "access_key_id": "testing",
                       "secret_access_key": "testing", "max_attempts": 1,
                       "connect_timeout_s": 1},
    }
    first = OvenProcess(tmp_path, config=config, port=port).start()
    second = OvenProcess(tmp_path, config=config, port=port)
    try:
        s3.down()
        accepted = submit(first, piece="still", format="png", width=120, height=80)
        wait_for_job(first, accepted["id"], {"upload_pending"}, timeout=60)
        if ending == "killed":
            first.kill()
        else:
            assert first.stop() == 0
        left = stored_jobs(tmp_path / "data", [accepted["id"]])[accepted["id"]]
        assert left.state.value == "upload_pending", left
        assert left.owner == f"{socket.gethostname()}:{port}", left.owner
        kept = sorted((tmp_path / "data" / "pending").glob(f"{accepted['id']}*"))
        assert len(kept) == 1, kept

        second.start()  # storage is still down
        first.assert_no_leftovers(timeout=30)
        assert "resumed 1 of its jobs from the store" in second.log
        assert job(second, accepted["id"])["state"] == "upload_pending"
        assert metric(second, "oven_upload_pending") == 1

        s3.up()
        view = wait_for_job(second, accepted["id"], timeout=60)
        assert view["state"] == "complete", view
        # Uploaded from the kept file, not captured again.
        assert view["attempts"] == 1, view
        assert [h["state"] for h in view["history"]].count("complete") == 1, view["history"]
        assert not kept[0].exists()
        result = httpx.get(f"{second.url}/grabs/{accepted['id']}/result",
                           follow_redirects=True, timeout=30)
        assert result.status_code == 200 and result.content[:8] == b"\x89PNG\r\n\x1a\n"
        listing = httpx.get(f"{endpoint}/{BUCKET}?list-type=2", timeout=10).text
        assert listing.count("<Key>") == 1, listing
    finally:
        for oven in (second, first):
            if oven.proc is not None and oven.proc.poll() is None:
                oven.stop()
