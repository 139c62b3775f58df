from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oven_process import OvenStarter, StartOven

# One line per poll of the API would drown the log a failing test shows.
logging.getLogger("httpx").setLevel(logging.WARNING)

# Transitional: a few files still import helpers by their bare name (`from pipeline.grab_client
# import ...`); every helper is `tests.<module>` and this line goes once they are converted.
# Appended, not prepended: tests/pty is a package now and must not shadow the stdlib's `pty`.
sys.path.append(str(Path(__file__).parent))


@pytest.fixture
def start_oven(tmp_path: Path) -> Iterator[StartOven]:
    """Starts services with their own config; teardown stops each and checks for leftovers."""
    starter = OvenStarter(tmp_path)
    yield starter
    starter.stop_all()
