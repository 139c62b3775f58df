"""MemoryWatch: the memory of the whole process tree against the budget."""

from oven.actors.memory_watch._actor import (
    MemoryStatus,
    MemoryWatch,
)

__all__ = [
    "MemoryStatus",
    "MemoryWatch",
]
