"""Baker: bundles (bakes) admitted, fetched, unpacked within limits and uploaded."""

from oven.actors.baker._actor import KIND as BAKES_KIND
from oven.actors.baker._actor import REFS as BAKE_REFS_KIND
from oven.actors.baker._actor import Baker
from oven.actors.baker._messages import (
    Admit,
    BakeStatus,
    Enqueue,
    Fetch,
    Release,
    work_root,
)

__all__ = [
    "BAKES_KIND",
    "BAKE_REFS_KIND",
    "Admit",
    "BakeStatus",
    "Baker",
    "Enqueue",
    "Fetch",
    "Release",
    "work_root",
]
