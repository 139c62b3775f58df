from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oven_process import OvenStarter, StartOven

# One line per poll of the API would drown the log a failing test shows.
logging.getLogger("httpx").setLevel(logging.WARNING)



@pytest.fixture
def start_oven(tmp_path: Path) -> Iterator[StartOven]:
    """Starts services with their own config; teardown stops each and checks for leftovers."""
    starter = OvenStarter(tmp_path)
    yield starter
    starter.stop_all()
