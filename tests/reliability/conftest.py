"""The fault suite drives real `oven serve` processes, as the pipeline tests do."""

from __future__ import annotations

# The same fixture as the pipeline tests: each service gets its own workdir, and teardown stops
# it and asserts that nothing it started is still running.
from pipeline.conftest import StartOven, start_oven

__all__ = ["StartOven", "start_oven"]
