"""A browser that cannot be relaunched: not-ready, fast transient errors, recovery or escalation.

Real Chromium under a real supervisor. The executable is a script that execs /usr/bin/chromium
until a flag file exists and then refuses to start (exit 1): the fault is a real failed launch.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pykka
import pytest

from oven.actors.browser_pool import BrowserPool, Capture, PoolStatus, Recycle
from oven.actors.runtime import ActorContext, Ping
from oven.capture import BrowserGone, CaptureRequest, CaptureResult, piece_url
from oven.config import Settings
from oven.readiness import ReadinessBoard
from oven.supervisor import ChildSpec, Registry, RestartPolicy, StartChildren, Supervisor
from tests.oven_process import StartOven
from tests.pipeline.grab_client import chromium_main, job, submit, wait_for_job
from tests.waiting import wait_until


class QuickRetryPool(BrowserPool):
    """The production policy with short waits, so a test sees several attempts."""

    relaunch_backoff_initial_s = 0.2
    relaunch_backoff_max_s = 0.5
    relaunch_give_up_s = 120.0


class GivingUpPool(QuickRetryPool):
    relaunch_give_up_s = 2.0


def descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def alive(pids: set[int]) -> dict[int, str]:
    left = {}
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                left[pid] = " ".join(proc.cmdline())[:100]
        except psutil.NoSuchProcess:
            pass
    return left


def refusing_chromium(directory: Path) -> tuple[Path, Path]:
    """A Chromium executable that refuses to start while its flag file exists: (script, flag)."""
    flag = directory / "refuse-to-launch"
    script = directory / "chromium"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ -e "{flag}" ]; then echo "launch refused by the test" >&2; exit 1; fi\n'
        'exec /usr/bin/chromium "$@"\n')
    script.chmod(0o755)
    return script, flag


class Harness:
    def __init__(self, tmp_path: Path, pool: type[BrowserPool], intensity: int) -> None:
        script, self.flag = refusing_chromium(tmp_path)
        self.settings = Settings.model_validate({
            "server": {"data_dir": str(tmp_path / "data")},
            "browser": {"executable_path": str(script), "pages": 1, "launch_timeout_s": 30},
        })
        self.board = ReadinessBoard()
        self.registry = Registry()
        self.escalated = threading.Event()
        self.escalation = ""
        self.out = tmp_path / "frames"
        self.before = descendants()
        ctx = ActorContext(name="test-root", mailbox_capacity=None, lookup=self.registry,
                           on_exit=lambda *a: None)
        spec = ChildSpec(id="browser", start=lambda c: pool.start(c, self.settings, self.board),
                         mailbox_capacity=100, start_timeout_s=60, shutdown_timeout_s=20)
        policy = RestartPolicy(intensity=intensity, period_s=60, backoff_initial_s=0.05,
                               backoff_max_s=0.2, ping_interval_s=0.2, ping_timeout_s=30)
        self.root = Supervisor.start(ctx, children=[spec], registry=self.registry,
                                     policy=policy, on_escalate=self._escalate)
        self.root.ask(StartChildren(), timeout=90)

    def _escalate(self, why: str) -> None:
        self.escalation = why
        self.escalated.set()

    @property
    def pool(self) -> pykka.ActorRef[Any]:
        return self.registry.ref("browser")

    def capture(self, *, timeout_s: float = 20.0) -> CaptureResult:
        request = CaptureRequest(url=piece_url("still"), width=64, height=64)
        self.out.mkdir(exist_ok=True)
        result: CaptureResult = self.pool.ask(Capture("job-1", request, self.out, timeout_s),
                                              timeout=timeout_s + 10)
        return result

    def stop(self) -> dict[int, str]:
        if self.root.is_alive():
            self.root.stop(timeout=60)
        spawned = descendants() - self.before
        deadline = time.monotonic() + 10
        while alive(spawned) and time.monotonic() < deadline:
            time.sleep(0.1)  # the kernel finishing exits after SIGKILL
        return alive(spawned)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(pool: type[BrowserPool] = QuickRetryPool, *, intensity: int = 5) -> Harness:
        made.append(Harness(tmp_path, pool, intensity))
        return made[-1]

    yield make
    for each in made:
        each.flag.unlink(missing_ok=True)
        assert each.stop() == {}, "processes left behind"


def test_a_browser_that_cannot_relaunch_is_not_ready_fails_captures_fast_and_recovers(
    harness: Callable[..., Harness],
) -> None:
    h = harness()
    assert "browser" not in h.board.reasons()
    h.flag.touch()
    h.pool.tell(Recycle("test: the next launch is refused"))

    wait_until("the board to say the relaunch is failing",
               lambda: "relaunch failing" in h.board.reasons().get("browser", ""), timeout=30)
    assert "launch refused by the test" in h.board.reasons()["browser"]
    assert h.pool.ask(Ping(), timeout=5) == "pong"  # alive, and honest about the browser
    status = h.pool.ask(PoolStatus(), timeout=5)
    assert status["state"] == "relaunch_failing" and status["relaunch_attempts"] >= 1

    t0 = time.monotonic()
    with pytest.raises(BrowserGone, match="no browser: relaunch failing"):
        h.capture(timeout_s=20)
    assert time.monotonic() - t0 < 2.0, "a capture waited for a browser that is not coming"

    # Still retrying, with backoff: a few more attempts, the board naming each.
    first = status["relaunch_attempts"]
    wait_until("more relaunch attempts",
               lambda: h.pool.ask(PoolStatus(), timeout=5)["relaunch_attempts"] >= first + 2,
               timeout=30)

    h.flag.unlink()
    wait_until("the pool to relaunch the browser once it can",
               lambda: "browser" not in h.board.reasons(), timeout=30)
    assert h.pool.ask(PoolStatus(), timeout=5)["state"] == "running"
    result = h.capture()
    assert len(result.frames) == 1 and result.frames[0].stat().st_size > 0


def test_a_browser_unlaunchable_past_the_bound_crashes_the_pool_into_its_supervisor(
    harness: Callable[..., Harness],
) -> None:
    h = harness(GivingUpPool, intensity=1)
    old = h.pool.actor_urn
    h.flag.touch()
    h.pool.tell(Recycle("test: every launch is refused"))
    # The pool gives up after its bound and crashes; the supervisor restarts it, the restart
    # cannot launch either, and the restart budget is spent: escalation (the service exits).
    assert h.escalated.wait(60), "the pool never crashed into its supervisor"
    assert "browser" in h.escalation
    with pytest.raises(Exception, match="browser"):
        h.registry.ref("browser")
    assert old != ""
    assert "browser" in h.board.reasons()  # never reported ready while it had no browser


def test_through_oven_serve_a_browser_that_cannot_relaunch_answers_503_and_work_waits_for_it(
    start_oven: StartOven, tmp_path: Path,
) -> None:
    script, flag = refusing_chromium(tmp_path)
    oven = start_oven({"browser": {"executable_path": str(script), "pages": 1}})
    flag.touch()
    os.kill(chromium_main(oven).pid, signal.SIGKILL)  # a crash: the pool must relaunch

    def not_ready() -> bool:
        answer = httpx.get(f"{oven.url}/ready", timeout=5)
        return answer.status_code == 503 and "browser" in answer.json()["reasons"]

    wait_until("/ready to name the browser", not_ready, timeout=30)
    wait_until("a second failed relaunch", lambda: "relaunch attempt 2 failed" in oven.log,
               timeout=30)
    assert "launch refused by the test" in oven.log
    submitted = submit(oven, piece="still", format="png", width=64, height=64)["id"]
    wait_until("a third failed relaunch", lambda: "relaunch attempt 3 failed" in oven.log,
               timeout=30)
    waiting = job(oven, submitted)
    # Queued, not failed, not blamed on the piece: nothing is claimed while the browser is out.
    assert waiting["state"] == "queued" and waiting["attempts"] == 0, waiting
    assert not_ready()

    flag.unlink()
    done = wait_for_job(oven, submitted, timeout=60)
    assert done["state"] == "complete", done
    assert httpx.get(f"{oven.url}/ready", timeout=5).json() == {"ready": True, "reasons": []}
