"""README claims checked through a real `oven serve` (the pipeline's start_oven fixture)."""

from pipeline.conftest import StartOven, start_oven

__all__ = ["StartOven", "start_oven"]
