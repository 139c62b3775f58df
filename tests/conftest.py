from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.oven_process import SERVE_LOGS, OvenStarter, StartOven

# One line per poll of the API would drown the log a failing test shows.
logging.getLogger("httpx").setLevel(logging.WARNING)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
        item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """With OVEN_TEST_KEEP_LOGS=<dir>, a failed test's `oven serve` logs (every serve.log
    written during the test) are copied there: pytest keeps only its last three temp dirs,
    so a long run's failures would otherwise lose them."""
    if call.when == "setup":
        item.stash[_STARTED] = time.time()
    outcome = yield
    keep = os.environ.get("OVEN_TEST_KEEP_LOGS")
    if not keep or not outcome.get_result().failed:
        return
    since = item.stash.get(_STARTED, 0.0)
    target = Path(keep) / re.sub(r"[^\w.-]+", "_", item.nodeid)[-150:]
    for n, log in enumerate(sorted(SERVE_LOGS)):
        if log.exists() and log.stat().st_mtime >= since:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(log, target / f"{n}-{log.parent.name}.log")


_STARTED = pytest.StashKey[float]()


@pytest.fixture
def start_oven(tmp_path: Path) -> Iterator[StartOven]:
    """Starts services with their own config; teardown stops each and checks for leftovers."""
    starter = OvenStarter(tmp_path)
    yield starter
    starter.stop_all()
