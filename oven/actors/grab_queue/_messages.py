"""What the GrabQueue is asked and answers, the errors it raises, and a job's public view."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from oven.errors import Refusal
from oven.grabs import GrabRequest, GrabResult, Lane
from oven.jobs import JobState
from oven.store import HistoryEntry, JobRecord


class QueueFull(Refusal):
    status = 429

    def __init__(self, queued: int, retry_after_s: float) -> None:
        super().__init__(f"the grab queue is full ({queued} jobs waiting); retry later",
                         retry_after_s=retry_after_s)


class PieceFrozen(Refusal):
    status, code = 409, "frozen"

    def __init__(self, piece: str, until: float) -> None:
        left = max(0, until - time.time())
        super().__init__(f"piece {piece!r} is frozen for {left:.0f} s more after failing "
                         f"repeatedly; DELETE /frozen/{piece} (admin) to unfreeze it",
                         retry_after_s=left)


class JobElsewhere(Exception):
    """The job runs in another instance; only the instance holding its lease can stop it."""

    def __init__(self, job_id: str, owner: str | None) -> None:
        super().__init__(f"job {job_id} is running in instance {owner or '(unknown)'}; it can "
                         "be cancelled while queued or once it is final, not mid-run from here")
        self.job_id = job_id
        self.owner = owner


# -- messages --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submit:
    request: GrabRequest
    target_url: str


@dataclass(frozen=True)
class Submitted:
    job: dict[str, Any]  # the job view (see _view)
    cached: bool
    attached: bool
    cancel_token: str | None = None  # only for the submission that created the job


@dataclass(frozen=True)
class GetJob:
    job_id: str


@dataclass(frozen=True)
class WaitFor:
    job_id: str
    timeout_s: float


@dataclass(frozen=True)
class Cancel:
    job_id: str


@dataclass(frozen=True)
class QueueStatus:
    pass


@dataclass(frozen=True)
class InstancesSeen:
    """The instances on the shared store as this one last read their heartbeats."""


@dataclass(frozen=True)
class LocateResult:
    """Where a stored result can be read: answered with the Uploader's Location (a local
    path, a URL, or neither), asked of it by the queue on the caller's behalf."""

    storage_key: str


class GrabView(BaseModel):
    """A job as clients see it: the answer of GET and DELETE /grabs/{id}, documented as is.

    The queue's own view of a cache hit is smaller (no id, no record); every field a record
    gives is set by record_view.
    """

    model_config = ConfigDict(extra="forbid")

    id: str | None
    state: JobState
    stage: str | None = None
    lane: Lane | None = None
    piece: str | None = None
    capture_key: str | None = None
    request: dict[str, Any] | None = Field(
        default=None, description="The grab as submitted (validated, defaults filled in).")
    attempts: int | None = None
    created_at: float | None = Field(default=None, description="Epoch seconds.")
    updated_at: float | None = None
    deadline_at: float | None = None
    timings: dict[str, float] | None = Field(default=None, description="Seconds per stage.")
    result: GrabResult | None = None
    error: str | None = None
    history: list[HistoryEntry] | None = None
    position: int | None = Field(default=None, description="1 = next to run; queued only.")
    eta_s: float | None = None

    def as_json(self) -> dict[str, Any]:
        # Unset, not None: a result keeps exactly the facts it was stored with (a parked
        # upload has no storage fields yet) rather than gaining nulls.
        return self.model_dump(mode="json", exclude_unset=True)


class GrabStatus(BaseModel):
    """GET /grab-status: this instance's jobs and the shared queue as it last read it.

    The queue answers QueueStatus with the JSON of this model, built directly (see
    record_view); the edge validates it, so every key it sends is documented here.
    """

    model_config = ConfigDict(extra="forbid")

    instance_id: str
    capturing: int = Field(ge=0, description="Page slots taken by captures and claims.")
    running: list[GrabView] = Field(description="Jobs this instance is running.")
    queued: dict[Lane, list[GrabView]] = Field(
        description="The shared queue by lane, in claim order within each.")
    upload_pending: list[GrabView] = Field(
        description="Jobs this instance holds until storage takes their file.")
    recent: list[GrabView] = Field(description="Jobs finished here, newest first.")

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


def record_view(record: JobRecord) -> dict[str, Any]:
    """The JSON of a record's GrabView (tests check the two agree), built directly: status
    pages list every queued job, and validating each on the actor's loop is GIL time the HTTP
    loop waits for."""
    return {
        "id": record.id, "state": record.state.value, "stage": record.stage,
        "lane": record.lane.value, "piece": record.piece, "capture_key": record.capture_key,
        "request": {k: v for k, v in record.request.items() if k not in INTERNAL_KEYS},
        "attempts": record.attempts, "created_at": record.created_at,
        "updated_at": record.updated_at, "deadline_at": record.deadline_at,
        "timings": record.timings, "result": record.result, "error": record.error,
        "history": [h.model_dump(mode="json") for h in record.history],
        "position": None, "eta_s": None,
    }


# -- cancel tokens ---------------------------------------------------------------------------
# A job can be cancelled by the admin or by whoever holds its cancel token, handed out once to
# the submission that created it. The job keeps only a digest, in its request dict beside
# target_url: nothing read from the store or shown in a view can cancel it.

CANCEL_DIGEST = "cancel_digest"
INTERNAL_KEYS = frozenset({"target_url", CANCEL_DIGEST})  # in record.request, not the grab's


def new_cancel_token() -> tuple[str, str]:
    """A fresh token and the digest the job keeps."""
    token = secrets.token_urlsafe(32)
    return token, _digest(token)


def cancel_token_matches(record: JobRecord, token: str) -> bool:
    """Constant time; a job admitted without a digest matches no token."""
    expected = record.request.get(CANCEL_DIGEST)
    return isinstance(expected, str) and hmac.compare_digest(expected, _digest(token))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
