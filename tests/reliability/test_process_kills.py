"""kill -9 of the processes oven owns, mid-run: Chromium and ffmpeg. Nothing is lost."""

from __future__ import annotations

import datetime
import os
import signal
import time

import httpx

from tests.oven_process import OvenProcess, StartOven
from tests.pipeline.grab_client import chromium_main, ffmpegs, job, metric, submit, wait_for_job
from tests.waiting import wait_until

GRABS = 19  # the burst the old service took 10-13 minutes over
PAGE_STAGES = {"navigate", "ready", "capture"}
# The words a job's retry note uses for a browser that went away under it (BrowserGone and
# BrowserRecycled, oven/capture and oven/actors/browser_pool).
BROWSER_LOSS = ("browser gone during capture", "not connected", "has no page",
                "has no CDP session", "has no context", "the browser was recycled")


def browser_back(oven: OvenProcess, old_pid: int) -> bool:
    """A new main Chromium runs and /ready no longer names the browser."""
    try:
        if chromium_main(oven).pid == old_pid:
            return False
    except AssertionError:
        return False  # none, or the old one and its replacement both visible for a moment
    reasons = httpx.get(f"{oven.url}/ready", timeout=5).json()["reasons"]
    return "browser" not in reasons


def _logged_at(log: str, text: str) -> float | None:
    """Wall-clock time of the first log line holding `text` (oven logs local time, ms)."""
    for line in log.splitlines():
        if text in line:
            stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
            return stamp.timestamp()
    return None


def test_chromium_killed_during_a_burst_of_19_grabs_loses_none_and_is_back_promptly(
        start_oven: StartOven) -> None:
    # The claim is recovery from the kill, not the deadline: 19 captures of 2 s each took
    # more than the default 120 s with three test runs and a CPU hog on the machine, and the
    # last jobs failed as past their deadline.
    oven = start_oven({"queue": {"deadline_s": 900}})
    crashes_before = metric(oven, "oven_browser_restarts_total", {"reason": "crash"})
    browser = chromium_main(oven)
    # 40 frames at 20 fps: a job's capture stage lasts 2 s, so a kill seen in it lands while
    # it still needs the browser. With 16 frames (0.8 s) a run with the headless shell killed
    # the only capturing job after its last frame, while its stage still read "capture", and
    # interrupted nothing.
    ids = [submit(oven, piece="anim", format="webp", width=320 + i, height=180, frames=40,
                  fps=20)["id"] for i in range(GRABS)]
    assert len(set(ids)) == GRABS  # distinct sizes: no single-flight, 19 real captures

    wait_until("two grabs to complete",
               lambda: sum(job(oven, i)["state"] == "complete" for i in ids) >= 2, timeout=90)
    # Kill while a job holds a page (a job past capture is encoding and needs no browser).
    wait_until("a job to be capturing", lambda: [
        i for i in ids if job(oven, i)["stage"] in PAGE_STAGES], timeout=60, interval=0.02)
    killed_at = time.time()
    os.kill(browser.pid, signal.SIGKILL)
    wait_until("the browser to be back", lambda: browser_back(oven, browser.pid),
               timeout=60, interval=0.05)
    back_s = time.time() - killed_at
    print(f"browser back {back_s:.2f} s after kill -9")  # the figure, for -s runs
    # "Promptly" is the relaunch starting on the disconnect itself, not on the health probe
    # (two failed probes 5 s apart: >= 10 s). The launch after it is niced and waits its turn
    # on a loaded box (8-11 s beside `stress --cpu 2`, 1.3-2.1 s quiet), so it is the
    # detection that is bounded, from the log's own clock; 60 s above only ends the wait.
    detected = _logged_at(oven.log, "browser needs a recycle: chromium disconnected")
    assert detected is not None, oven.log[-3000:]
    assert detected - killed_at < 3.0, f"the disconnect was seen {detected - killed_at:.2f} s late"
    # The recycle is the disconnect's; a probe that was under way when the kill landed
    # may fail with it (one run at load 12 logged "failed (1 in a row)" in the same ms).
    assert "recycling the browser (chromium disconnected)" in oven.log
    assert "health probe failed twice" not in oven.log

    views = [wait_for_job(oven, i, timeout=180) for i in ids]
    assert [v["state"] for v in views] == ["complete"] * GRABS, views
    attempts = {v["id"]: v["attempts"] for v in views}
    assert max(attempts.values()) <= 2, attempts
    assert 2 in attempts.values(), attempts  # the captures the kill interrupted were retried
    # Each retry (counted or given back) names the browser's loss as its cause, in whichever
    # words the stage it hit found it: a call into a closed page ("browser gone during
    # capture"), a slot whose page or context the loss took ("slot N has no page"), a browser
    # no longer connected, or closed by the recycle the disconnect began. One run of three at
    # load 12 retried under a wording other than the first, which the log check of this test
    # missed; the notes are printed so the next such run says which.
    retries = {v["id"]: [h["note"] for h in v["history"]
                         if (h.get("note") or "").startswith(("retry:", "requeued"))]
               for v in views}
    retries = {job_id: notes for job_id, notes in retries.items() if notes}
    assert retries, views
    for notes in retries.values():
        assert all(any(cause in note for cause in BROWSER_LOSS) for note in notes), retries
    assert metric(oven, "oven_browser_restarts_total", {"reason": "crash"}) == crashes_before + 1
    assert not browser.is_running()


def test_an_ffmpeg_killed_mid_encode_is_retried_and_the_job_completes(
        start_oven: StartOven) -> None:
    oven = start_oven({"browser": {"pages": 1}})
    # 150 frames of 640x360 into H.264 at the slowest preset: an encode of several seconds on
    # this machine, long enough to find the ffmpeg and kill it while it works.
    accepted = submit(oven, piece="anim", format="mp4", width=640, height=360, frames=150,
                      fps=30, clock="virtual")
    job_id = accepted["id"]
    encoder = wait_until("an ffmpeg to run", lambda: (ffmpegs(oven) or [None])[0],
                         timeout=120, interval=0.05)
    assert job(oven, job_id)["stage"] == "encode"
    os.kill(encoder.pid, signal.SIGKILL)

    view = wait_for_job(oven, job_id, timeout=180)
    assert view["state"] == "complete", view
    assert view["attempts"] == 2, view
    assert view["result"]["frames"] == 150
    # The retry is the killed encode's, not any other: its attempt 1 failed over ffmpeg.
    retried = [line for line in oven.log.splitlines()
               if f"job={job_id} attempt 1 failed" in line and "retrying" in line]
    assert len(retried) == 1, oven.log[-4000:]
    assert "ffmpeg" in retried[0], retried
    assert ffmpegs(oven) == []
