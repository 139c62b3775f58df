"""A restarted instance resumes its own running jobs at once (README, Architecture and Running
several instances: the instance id is hostname:port, stable across restarts).

The tests that restart on a new port get a new instance id, so their jobs come back only when
the lease runs out. Here the restart keeps the port and the lease is an hour: a job that comes
back within the test's minutes came back through the restart's own resume, not the lease."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.oven_process import OvenProcess, free_port
from tests.pipeline.grab_client import job, submit, wait_for_job
from tests.pipeline.test_recovery import stored_jobs
from tests.waiting import wait_until

LEASE_S = 3600.0


def test_a_restart_on_the_same_port_requeues_its_own_running_job_without_waiting_for_the_lease(
        tmp_path: Path) -> None:
    port = free_port()
    config = {"browser": {"pages": 1}, "cluster": {"lease_s": LEASE_S}}
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
        first.assert_no_leftovers(timeout=15)  # the dead run's Chromium was swept at boot
        # Well inside the hour-long lease: only the resume at start can have requeued it.
        view = wait_for_job(second, accepted["id"], timeout=120)
        assert view["state"] == "complete", view
        assert view["attempts"] == 2, view
        assert "resumed 1 of its jobs from the store" in second.log
    finally:
        for oven in (second, first):
            if oven.proc is not None and oven.proc.poll() is None:
                oven.stop()
