"""An actor that keeps crashing: restarted with a growing backoff, then escalation and exit 3.

tests/test_serve.py already proves one crash → one restart with the metric, and that exceeding
the intensity exits non-zero; this one measures the spacing of the restarts on the way there.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import httpx

from tests.oven_process import OvenProcess
from tests.waiting import wait_until

ADMIN = "reliability-admin-token"
INTENSITY = 4
BACKOFF_INITIAL_S = 0.2


def encoder_status(oven: OvenProcess) -> dict[str, Any]:
    actors = {a["name"]: a for a in httpx.get(f"{oven.url}/status", timeout=5).json()["actors"]}
    return actors["encoder"]


def test_an_actor_crashing_repeatedly_restarts_with_growing_backoff_then_the_service_exits_3(
        tmp_path: Path) -> None:
    oven = OvenProcess(tmp_path, config={
        "server": {"admin_token": ADMIN, "fault_injection": True},
        # No jitter, so each measured delay can be held to its doubling.
        "supervisor": {"intensity": INTENSITY, "period_s": 120,
                       "backoff_initial_s": BACKOFF_INITIAL_S, "backoff_max_s": 5.0,
                       "jitter": 0.0},
        "browser": {"pages": 1},
    }).start()
    try:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        delays: list[float] = []
        for restart in range(1, INTENSITY + 1):
            crashed_at = time.time()  # up_since is wall-clock time
            response = httpx.post(f"{oven.url}/admin/faults/encoder/crash", headers=headers,
                                  timeout=5)
            assert response.status_code == 200, response.text
            status = wait_until(
                f"restart {restart} of the encoder",
                lambda n=restart: (lambda s: s if s["restarts"] == n and s["state"] == "running"
                                   else None)(encoder_status(oven)),
                timeout=30, interval=0.02)
            delays.append(status["up_since"] - crashed_at)
        print("restart delays (s):", [round(d, 3) for d in delays])
        for n, delay in enumerate(delays):
            planned = BACKOFF_INITIAL_S * 2**n
            # The backoff is the floor; starting the actor and its ping add a little on top.
            assert planned <= delay < planned + 1.0, (n, delays)
        assert all(b > a for a, b in itertools.pairwise(delays)), delays
        assert "restarting encoder in 1.60 s (restart 4)" in oven.log

        # One more inside the window is over the budget: stop everything and exit 3.
        httpx.post(f"{oven.url}/admin/faults/encoder/crash", headers=headers, timeout=5)
        assert oven.wait(timeout=60) == 3, oven.log[-3000:]
        assert "restart budget exceeded" in oven.log
        oven.assert_no_leftovers()
    finally:
        if oven.proc is not None and oven.proc.poll() is None:
            oven.stop()
