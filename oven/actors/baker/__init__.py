"""Baker: bundles (bakes) admitted, fetched, unpacked within limits and uploaded."""

from oven.actors.baker._actor import (
    Admit,
    Baker,
    BakeStatus,
    Enqueue,
    Release,
    work_root,
)

__all__ = [
    "Admit",
    "BakeStatus",
    "Baker",
    "Enqueue",
    "Release",
    "work_root",
]
