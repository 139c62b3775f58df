"""The capture engine: one Chromium with warm page slots, and captures of pieces into frames.

Plain async classes; the BrowserPool actor runs them on its own asyncio loop thread.
"""

from oven.capture._browser import Browser, BrowserState, Slot
from oven.capture._capture import (
    MAX_DELAY_MS,
    MAX_DENSITY,
    MAX_EXPRESSION,
    MAX_FPS,
    MAX_FRAMES,
    MAX_INJECT_BYTES,
    MAX_SIDE,
    MIN_FPS,
    CaptureRequest,
    CaptureResult,
    capture,
)
from oven.capture._clock import VIRTUAL_CLOCK_JS
from oven.capture._errors import (
    BrowserGone,
    BrowserLostToMemoryKill,
    BrowserRecycled,
    MemoryCeilingExceeded,
    NotAsAsked,
    PieceError,
    RendererCrashed,
)
from oven.capture._guard import GuardMode, RequestGuard, is_private
from oven.capture._pieces import PIECES_ORIGIN, piece_names, piece_url, pieces_dir
from oven.capture._processes import marked_pids, new_marker, sweep_orphans
from oven.capture._quality import FLAGS, Flag
from oven.capture._ready import ReadyRule
from oven.capture._settings import BrowserSettings

__all__ = [
    "FLAGS",
    "MAX_DELAY_MS",
    "MAX_DENSITY",
    "MAX_EXPRESSION",
    "MAX_FPS",
    "MAX_FRAMES",
    "MAX_INJECT_BYTES",
    "MAX_SIDE",
    "MIN_FPS",
    "PIECES_ORIGIN",
    "VIRTUAL_CLOCK_JS",
    "Browser",
    "BrowserGone",
    "BrowserLostToMemoryKill",
    "BrowserRecycled",
    "BrowserSettings",
    "BrowserState",
    "CaptureRequest",
    "CaptureResult",
    "Flag",
    "GuardMode",
    "MemoryCeilingExceeded",
    "NotAsAsked",
    "PieceError",
    "ReadyRule",
    "RendererCrashed",
    "RequestGuard",
    "Slot",
    "capture",
    "is_private",
    "marked_pids",
    "new_marker",
    "piece_names",
    "piece_url",
    "pieces_dir",
    "sweep_orphans",
]
