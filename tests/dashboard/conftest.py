"""One real `oven serve` for the dashboard tests, with freezing after one failure and PTY on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.oven_process import OvenProcess, running_oven

ADMIN_TOKEN = "dashboard-admin-token"
PTY_TOKEN = "dashboard-pty-token"


@pytest.fixture(scope="package")
def oven(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvenProcess]:
    with running_oven(tmp_path_factory.mktemp("dashboard-oven"), {
        "server": {"admin_token": ADMIN_TOKEN},
        "queue": {"freeze_after": 1},
        "pty": {"enabled": True, "token": PTY_TOKEN},
        "pty.profiles.cat": {"command": ["cat"]},
    }) as process:
        yield process
