"""kill -9 of `oven serve` with 50 jobs queued and running: the next start finishes all of them.

tests/pipeline/test_recovery.py proves the same for 6 jobs on one page; this is the load the
issue names, on the default pool, with the results listing and the orphan sweep checked too.
"""

from __future__ import annotations

from pathlib import Path

import psutil

from tests.oven_process import StartOven
from tests.pipeline.grab_client import job, submit, wait_for_job
from tests.pipeline.test_recovery import stored_jobs
from tests.waiting import wait_until

JOBS = 50
CONFIG = {"queue": {"deadline_s": 900}}


def marked_by(pid: int) -> list[psutil.Process]:
    """Every process on the machine whose owner marker names `pid` (see capture._processes)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(a.startswith(f"--oven-owner={pid}-") for a in proc.info["cmdline"] or []):
            found.append(proc)
    return found


def _states(workdir: Path, ids: list[str]) -> list[str]:
    return [r.state.value for r in stored_jobs(workdir / "data", ids).values()]


def body(i: int) -> dict[str, object]:
    """Small grabs, half stills and half short animations; distinct sizes, so 50 capture keys."""
    if i % 2:
        return {"piece": "still", "format": "png", "width": 120 + i, "height": 80}
    return {"piece": "anim", "format": "webp", "width": 120 + i, "height": 80, "frames": 10,
            "fps": 20, "clock": "virtual"}


def test_fifty_jobs_in_flight_when_oven_is_killed_all_complete_once_after_a_restart(
        start_oven: StartOven) -> None:
    # 50 jobs on 2 pages: beside a CPU hog their estimated wait passed the default 120 s
    # deadline and admission refused the 34th; the claim here is the restart, not admission.
    first = start_oven(CONFIG)
    ids = [submit(first, **body(i))["id"] for i in range(JOBS)]
    assert len(set(ids)) == JOBS
    assert first.proc is not None
    dead_pid = first.proc.pid
    assert marked_by(dead_pid), "the first service's Chromium carries no owner marker"
    # Kill as soon as the first two are done: the rest are running or still queued.
    wait_until("the first two jobs to finish", lambda: all(
        job(first, i)["state"] == "complete" for i in ids[:2]), timeout=120, interval=0.05)
    first.kill()
    states = _states(first.workdir, ids)  # as the dead service left them
    assert "queued" in states and "running" in states, states

    second = start_oven(CONFIG, workdir=first.workdir)
    # The orphans of the dead service were swept at boot: none of its processes is alive, and
    # no process anywhere still carries its marker.
    first.assert_no_leftovers(timeout=30)
    assert marked_by(dead_pid) == []

    views = [wait_for_job(second, i, timeout=300) for i in ids]
    assert [v["state"] for v in views] == ["complete"] * JOBS, [
        (v["id"], v["state"], v["error"]) for v in views if v["state"] != "complete"]
    assert all(v["attempts"] <= 2 for v in views), [v["attempts"] for v in views]
    keys = {v["result"]["storage_key"] for v in views}
    assert len(keys) == JOBS  # one result per capture key
    second.stop()

    records = stored_jobs(first.workdir / "data", ids)
    assert sorted(records) == sorted(ids)
    for job_id, record in records.items():
        completions = [h for h in record.history if h.state.value == "complete"]
        assert len(completions) == 1, (job_id, record.history)
    results = [p for p in (first.workdir / "data" / "results").rglob("*") if p.is_file()]
    assert len(results) == JOBS, sorted(str(p) for p in results)


def test_a_job_out_of_attempts_when_oven_was_killed_fails_at_the_restart_instead_of_running_again(
        start_oven: StartOven) -> None:
    # Failed before: the restart requeued it whatever its attempts, so a job that takes the
    # whole service down would do so forever.
    config = {"queue": {"max_attempts": 1}, "cluster": {"instance_id": "one"}}
    first = start_oven(config)
    accepted = submit(first, piece="anim", format="webp", width=160, height=90, frames=60,
                      fps=20)
    wait_for_job(first, accepted["id"], {"running"}, timeout=60)
    first.kill()
    second = start_oven(config, workdir=first.workdir)
    view = wait_for_job(second, accepted["id"], timeout=60)
    assert view["state"] == "failed", view
    assert "stopped while running it" in view["error"] and "1 attempts" in view["error"], view
    assert view["attempts"] == 1
