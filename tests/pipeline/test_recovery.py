"""Crashes: Chromium killed mid-job, and `oven serve` itself killed with jobs in flight."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx

from oven.store import JobRecord, StoreSettings, make_store
from tests.oven_process import StartOven
from tests.waiting import wait_until

from .grab_client import chromium_main, job, metric, submit, wait_for_job


def test_chromium_killed_mid_job_is_restarted_and_the_job_retried_to_completion(
        start_oven: StartOven) -> None:
    oven = start_oven({})
    crashes_before = metric(oven, "oven_browser_restarts_total", {"reason": "crash"})
    browser = chromium_main(oven)
    accepted = submit(oven, piece="anim", format="webp", width=310, height=174, frames=60,
                      fps=20, clock="real")
    job_id = accepted["id"]
    wait_until("the job to run", lambda: job(oven, job_id)["state"] == "running", timeout=30)
    # 3 s of frames at 20 fps: one second in, the job is past navigation and capturing.
    running_since = time.monotonic()
    wait_until("the capture to be under way",
               lambda: time.monotonic() - running_since > 1.0, timeout=5)
    assert job(oven, job_id)["state"] == "running"
    os.kill(browser.pid, signal.SIGKILL)

    view = wait_for_job(oven, job_id, timeout=90)
    assert view["state"] == "complete", view
    assert view["attempts"] == 2, view
    assert view["result"]["frames"] == 60
    assert metric(oven, "oven_browser_restarts_total", {"reason": "crash"}) == crashes_before + 1
    replacement = chromium_main(oven)
    assert replacement.pid != browser.pid
    assert not browser.is_running()


def stored_jobs(data_dir: Path, ids: list[str]) -> dict[str, JobRecord]:
    """Read the jobs straight from the SQLite store the services shared (both are stopped)."""

    async def read() -> dict[str, JobRecord]:
        store = make_store(StoreSettings(backend="sqlite"), data_dir)
        await store.start()
        try:
            found = {job_id: await store.get_job(job_id) for job_id in ids}
        finally:
            await store.close()
        return {k: v for k, v in found.items() if v is not None}

    return asyncio.run(read())


def test_jobs_queued_when_oven_is_killed_complete_exactly_once_after_a_restart(
        start_oven: StartOven) -> None:
    # One page, so most of the six wait in the queue when the service dies.
    config = {"browser": {"pages": 1}, "queue": {"interactive_reserved": 0}}
    first = start_oven(config)
    ids = [submit(first, piece="anim", format="webp", width=200 + i, height=120, frames=20,
                  fps=20)["id"] for i in range(6)]
    assert len(set(ids)) == 6
    wait_until("the first job to run", lambda: job(first, ids[0])["state"] == "running",
               timeout=30)
    states = [job(first, i)["state"] for i in ids]
    assert "queued" in states, states
    first.kill()

    second = start_oven(config, workdir=first.workdir)
    # The new service swept the orphaned Chromium of the first at boot.
    first.assert_no_leftovers(timeout=30)

    views = [wait_for_job(second, i, timeout=120) for i in ids]
    assert [v["state"] for v in views] == ["complete"] * 6, views
    retried = [v for v in views if v["attempts"] == 2]
    assert [v["id"] for v in retried] == [ids[0]], views  # the one running at the kill
    recent = httpx.get(f"{second.url}/grab-status", timeout=10).json()["recent"]
    assert sorted(j["id"] for j in recent if j["id"] in ids) == sorted(ids)
    second.stop()

    records = stored_jobs(first.workdir / "data", ids)
    assert sorted(records) == sorted(ids)
    for job_id, record in records.items():
        completions = [h for h in record.history if h.state.value == "complete"]
        assert len(completions) == 1, (job_id, record.history)
        assert record.history[-1].state.value == "complete", (job_id, record.history)

