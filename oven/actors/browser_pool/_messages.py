"""BrowserPool's messages and the errors its captures answer with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from oven.capture import CaptureRequest, PieceError


class MemoryBudgetExceeded(PieceError):
    """The job's page grew past what the memory budget allows (permanent: counts to freezing)."""


class BrowserRelaunchFailed(RuntimeError):
    """The browser could not be relaunched within the pool's bound: the pool crashes with it."""


class CaptureTimeout(Exception):
    """The capture did not finish before the job's deadline. `in_page` says whether the piece's
    page was running when time ran out (its fault) or the job was still waiting for a browser
    or a page slot (oven's)."""

    def __init__(self, message: str, *, in_page: bool, in_page_s: float = 0.0) -> None:
        super().__init__(message)
        self.in_page = in_page
        self.in_page_s = in_page_s  # how long the piece's page ran before time ran out


@dataclass(frozen=True)
class Capture:
    job_id: str
    request: CaptureRequest
    out_dir: Path
    timeout_s: float
    # Called with `ready`, then `capture`, on the pool's loop as the capture moves on, before
    # the capture answers: the caller hops to its own loop (a stage told by message instead
    # would take a slot of the caller's bounded mailbox and could land after the answer).
    on_stage: Callable[[str], None] | None = None


@dataclass(frozen=True)
class CancelCapture:
    """Stop a job's capture now; its page context is closed by the capture's own cleanup."""

    job_id: str


@dataclass(frozen=True)
class Recycle:
    reason: str


@dataclass(frozen=True)
class SlotHeaps:
    """Ask (MemoryWatch): JS heap bytes of each running capture, by job id."""


@dataclass(frozen=True)
class FailForMemory:
    """Stop this job's capture and fail it with MemoryBudgetExceeded."""

    job_id: str
    detail: str


@dataclass(frozen=True)
class LimitPages:
    """Memory pressure: run at most `pages` slots (None: back to the configured size)."""

    pages: int | None


@dataclass(frozen=True)
class PoolStatus:
    """Ask: a snapshot for /status and the dashboard."""
