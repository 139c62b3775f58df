"""The Baker's messages, its refusal, and where bakes keep their files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from oven.bakes import BakePlan, CallbackStyle, Tape
from oven.config import Settings
from oven.errors import Refusal


class BakesBusy(Refusal):
    status = 429

    def __init__(self, active: int, retry_after_s: float) -> None:
        super().__init__(f"{active} bakes are queued or running (bakes.max_active); "
                         "try again later", retry_after_s=retry_after_s)


@dataclass(frozen=True)
class Admit:
    """Reserve a place for a bake before its body is read; BakesBusy when full."""

    bake_id: str


@dataclass(frozen=True)
class Release:
    """Give back a reservation whose upload was refused."""

    bake_id: str


@dataclass(frozen=True)
class Enqueue:
    """An admitted bake whose tape is unpacked and planned in `work_dir`: record it, run it."""

    bake_id: str
    work_dir: Path
    tape: Tape
    plan: BakePlan
    source: str
    callback_url: str | None = None


@dataclass(frozen=True)
class Fetch:
    """An admitted bake whose archive is still at `url` ([pieces] origin rules): recorded at
    once, then fetched, checked and planned by the Baker, and run like an Enqueue.

    `refs` are the caller's names for the bake (indexed in REFS); `result_base` makes relative
    result URLs absolute in an "old"-style callback.
    """

    bake_id: str
    work_dir: Path
    url: str
    scale: int
    callback_url: str | None = None
    callback_style: CallbackStyle = CallbackStyle.OVEN
    refs: dict[str, str] | None = None
    result_base: str | None = None


@dataclass(frozen=True)
class BakeStatus:
    """Counts for /status: reserved, queued, running."""


def work_root(settings: Settings) -> Path:
    return settings.resolve(Path("bakes"))
