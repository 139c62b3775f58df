"""One real `oven serve` for the dashboard tests, with freezing after one failure and PTY on."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from oven_process import OvenProcess

logging.getLogger("httpx").setLevel(logging.WARNING)

ADMIN_TOKEN = "dashboard-admin-token"
PTY_TOKEN = "dashboard-pty-token"


@pytest.fixture(scope="package")
def oven(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvenProcess]:
    process = OvenProcess(tmp_path_factory.mktemp("dashboard-oven"), config={
        "server": {"admin_token": ADMIN_TOKEN},
        "queue": {"freeze_after": 1},
        "pty": {"enabled": True, "token": PTY_TOKEN},
        "pty.profiles.cat": {"command": ["cat"]},
    }).start()
    try:
        yield process
    finally:
        code = process.stop()
    assert code == 0, f"oven serve exited {code} on SIGTERM:\n{process.log[-3000:]}"
