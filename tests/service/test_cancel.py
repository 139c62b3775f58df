"""Cancelling (README, Cancelling): a queued job never runs, a job in its encode has its ffmpeg
killed, and a job running on another instance is a 409 `running_elsewhere` there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.oven_process import StartOven
from tests.pipeline.grab_client import ffmpegs, job, submit, wait_for_job
from tests.waiting import wait_until

# 30 s of real-clock frames: the one page stays taken while the test works beside it.
LONG = {"piece": "anim", "format": "webp", "height": 90, "frames": 300, "fps": 10,
        "clock": "real"}


def cancel(url: str, accepted: dict[str, Any]) -> httpx.Response:
    return httpx.delete(f"{url}/grabs/{accepted['id']}", timeout=30,
                        headers={"X-Cancel-Token": accepted["cancel_token"]})


def test_cancelling_a_queued_grab_means_it_never_runs(start_oven: StartOven) -> None:
    oven = start_oven({"browser": {"pages": 1}, "queue": {"interactive_reserved": 0}})
    running = submit(oven, **LONG, width=160)
    wait_until("the first grab to run", lambda: job(oven, running["id"])["state"] == "running",
               timeout=60)
    queued = submit(oven, piece="still", format="png", width=161, height=90)
    assert job(oven, queued["id"])["state"] == "queued"

    response = cancel(oven.url, queued)
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "cancelled"
    # Free the page: had the cancel not taken, the queued job would run now.
    assert cancel(oven.url, running).status_code == 200
    after = submit(oven, piece="still", format="png", width=162, height=90)
    assert wait_for_job(oven, after["id"])["state"] == "complete"
    view = job(oven, queued["id"])
    assert view["state"] == "cancelled" and view["attempts"] == 0, view
    assert view["result"] is None, view
    result = httpx.get(f"{oven.url}/grabs/{queued['id']}/result", timeout=10)
    assert result.status_code == 409, result.text


def test_cancelling_a_grab_during_its_encode_kills_its_ffmpeg(start_oven: StartOven) -> None:
    # x264 veryslow, lossless: 150 frames of 1280x720 take over a minute to encode on a
    # 2-core machine (96 s measured under load), so an ffmpeg gone within seconds of the
    # cancel was killed, not left to finish.
    oven = start_oven({"browser": {"pages": 1},
                       "encoder": {"mp4_preset": "veryslow", "mp4_crf": 0, "timeout_s": 600},
                       "queue": {"deadline_s": 900}})
    accepted = submit(oven, piece="anim", format="mp4", width=1280, height=720, frames=150,
                      fps=30, clock="virtual")
    encoders = wait_until("an ffmpeg to run", lambda: ffmpegs(oven), timeout=120, interval=0.05)
    assert job(oven, accepted["id"])["stage"] == "encode"

    response = cancel(oven.url, accepted)
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "cancelled"
    # The bound is the claim (killed at once); 10 s is generous for a loaded 2-core machine.
    wait_until("the encode's ffmpeg to be gone",
               lambda: not any(_alive(p) for p in encoders), timeout=10)
    assert ffmpegs(oven) == []
    view = job(oven, accepted["id"])
    assert view["state"] == "cancelled" and view["result"] is None, view
    assert httpx.get(f"{oven.url}/grabs/{accepted['id']}/result", timeout=10).status_code == 409
    after = submit(oven, piece="anim", format="mp4", width=320, height=180, frames=10, fps=10)
    assert wait_for_job(oven, after["id"], timeout=120)["state"] == "complete"


def test_cancelling_on_an_instance_that_does_not_run_the_grab_is_a_409_running_elsewhere(
        start_oven: StartOven, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()

    def config(instance: str) -> dict[str, dict[str, Any]]:
        return {"browser": {"pages": 1}, "queue": {"interactive_reserved": 0},
                "store": {"sqlite_path": str(shared / "oven.db")},
                "storage": {"backend": "local", "local_dir": str(shared / "results")},
                "cluster": {"instance_id": instance, "poll_s": 0.2}}

    # Both up before the grab: either may claim it (the store is the queue), and the test
    # then asks the one that did not.
    ovens = {name: start_oven(config(name)) for name in ("one", "two")}
    accepted = submit(ovens["one"], **LONG, width=160)

    def claimed_by() -> str | None:
        view = job(ovens["one"], accepted["id"])
        notes = [h["note"] for h in view["history"] if h["state"] == "running"]
        return notes[-1].removeprefix("claimed by ") if view["state"] == "running" else None

    runner_name = wait_until("the grab to run on one instance", claimed_by, timeout=60)
    runner = ovens[runner_name]
    other = ovens["two" if runner_name == "one" else "one"]

    elsewhere = cancel(other.url, accepted)
    assert elsewhere.status_code == 409, elsewhere.text
    assert elsewhere.json()["error"]["code"] == "running_elsewhere", elsewhere.text
    assert job(runner, accepted["id"])["state"] == "running"  # the refused cancel took nothing

    here = cancel(runner.url, accepted)
    assert here.status_code == 200, here.text
    assert here.json()["state"] == "cancelled"
    wait_until("the other instance to see the cancel",
               lambda: job(other, accepted["id"])["state"] == "cancelled", timeout=15)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
