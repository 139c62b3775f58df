"""The supervision tree oven serve runs, in start order (stopped in reverse)."""

from __future__ import annotations

from oven.config import Settings
from oven.supervisor import ChildSpec


def children(settings: Settings) -> list[ChildSpec]:
    return []
