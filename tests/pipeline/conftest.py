"""One real `oven serve` shared by the pipeline tests that do not need their own config."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from oven_process import OvenProcess, free_port

# One line per poll of the API would drown the log a failing test shows.
logging.getLogger("httpx").setLevel(logging.WARNING)

ADMIN_TOKEN = "pipeline-admin-token"
MAX_BODY_BYTES = 65536


@pytest.fixture(scope="session")
def shared_oven(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvenProcess]:
    port = free_port()
    oven = OvenProcess(
        tmp_path_factory.mktemp("shared-oven"),
        config={
            "server": {"admin_token": ADMIN_TOKEN, "max_body_bytes": MAX_BODY_BYTES},
            # Lossless WebP, so the pixels a piece painted survive for the clock test.
            "encoder": {"webp_lossless": True},
            # The service's own loopback origin is allowed, so the private-address rule (not
            # just the allow-list) is what refuses it.
            "pieces": {"allowed_origins": [f"http://localhost:{port}"]},
        },
        port=port,
    )
    oven.start()
    try:
        yield oven
    finally:
        code = oven.stop()
    assert code == 0, f"oven serve exited {code} on SIGTERM:\n{oven.log[-3000:]}"


StartOven = Callable[..., OvenProcess]


@pytest.fixture
def start_oven(tmp_path: Path) -> Iterator[StartOven]:
    """Starts services with their own config; teardown stops each and checks for leftovers."""
    started: list[OvenProcess] = []

    def start(config: dict[str, dict[str, Any]], *, workdir: Path | None = None) -> OvenProcess:
        oven = OvenProcess(workdir or tmp_path / f"oven-{len(started)}", config=config)
        oven.workdir.mkdir(exist_ok=True)
        started.append(oven)
        return oven.start()

    yield start
    errors = []
    for oven in reversed(started):
        try:
            code = oven.stop()
        except AssertionError as exc:
            errors.append(str(exc))
            continue
        if code not in (0, -signal.SIGKILL):  # -SIGKILL: a test killed it on purpose
            errors.append(f"oven serve exited {code} on SIGTERM:\n{oven.log[-3000:]}")
    assert not errors, errors
