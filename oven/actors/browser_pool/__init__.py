"""BrowserPool: one Chromium, its pages, their captures and memory ceilings."""

from oven.actors.browser_pool._actor import (
    BrowserPool,
)
from oven.actors.browser_pool._messages import (
    CancelCapture,
    Capture,
    CaptureTimeout,
    FailForMemory,
    LimitPages,
    PoolStatus,
    Recycle,
    SlotHeaps,
)

__all__ = [
    "BrowserPool",
    "CancelCapture",
    "Capture",
    "CaptureTimeout",
    "FailForMemory",
    "LimitPages",
    "PoolStatus",
    "Recycle",
    "SlotHeaps",
]
