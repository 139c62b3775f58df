"""What the store keeps: job records with their history, frozen pieces and instances."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from oven.jobs import JobState
from oven.lanes import Lane

Stage = Literal["queued", "navigate", "ready", "capture", "encode", "upload"]

# Records are read back from a store other versions write too: during a rolling upgrade an
# older instance reads what a newer one wrote, so a field it does not know is left unread
# instead of failing the read (and with it the poll, the claim or the job). What clients
# send is checked strictly at the edge (GrabRequest), not here.
_READ_FORWARD = ConfigDict(extra="ignore")


class HistoryEntry(BaseModel):
    """One state change of a job: which state, when (epoch seconds), and why."""

    model_config = _READ_FORWARD

    state: JobState
    at: float
    note: str | None = None


class JobRecord(BaseModel):
    """A grab as the store keeps it; the same words are used by the API and the metrics."""

    model_config = _READ_FORWARD

    id: str = Field(min_length=1)
    capture_key: str = Field(min_length=1)
    state: JobState
    lane: Lane
    piece: str | None = None
    request: dict[str, Any] = Field(description="The validated grab request.")
    attempts: int = Field(default=0, ge=0)
    created_at: float = Field(description="Admission time, epoch seconds.")
    updated_at: float
    deadline_at: float = Field(description="Epoch seconds; counts from admission.")
    stage: Stage | None = None
    history: list[HistoryEntry] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds per stage.")
    result: dict[str, Any] | None = Field(
        default=None,
        description="storage_key, url, size, content_type, frames, frozen, ready.",
    )
    error: str | None = None
    owner: str | None = Field(default=None, description="Which worker holds the job.")
    lease_expires_at: float | None = None
    claim: str | None = Field(
        default=None,
        description="Token of the claim that holds (or last held) the job. Every claim makes a "
        "new one, also by the same instance after its lease lapsed, so a settle or renewal "
        "carrying an older token can never touch a newer attempt.",
    )
    target_url: str | None = Field(
        default=None,
        description="Where the browser goes: the piece's page or the allowed URL asked for.",
    )

    @model_validator(mode="before")
    @classmethod
    def _target_from_request(cls, data: Any) -> Any:
        # Records written before target_url was a field kept it in the request dict (schema 2
        # SQLite rows, older MongoDB documents): read it from there. The request is left as
        # it was, so a reader that still looks there finds it too.
        if isinstance(data, dict) and data.get("target_url") is None:
            request = data.get("request")
            if isinstance(request, dict) and isinstance(request.get("target_url"), str):
                return {**data, "target_url": request["target_url"]}
        return data

    @classmethod
    def queued(
        cls,
        *,
        id: str,
        capture_key: str,
        lane: Lane | str,
        request: dict[str, Any],
        deadline_s: float,
        piece: str | None = None,
        target_url: str | None = None,
        now: float | None = None,
        note: str | None = "admitted",
    ) -> JobRecord:
        """A freshly admitted job: state `queued`, one history entry, deadline from now."""
        at = time.time() if now is None else now
        return cls(
            id=id,
            capture_key=capture_key,
            state=JobState.QUEUED,
            lane=Lane(lane),
            piece=piece,
            request=request,
            target_url=target_url,
            created_at=at,
            updated_at=at,
            deadline_at=at + deadline_s,
            stage="queued",
            history=[HistoryEntry(state=JobState.QUEUED, at=at, note=note)],
        )


class FrozenPiece(BaseModel):
    """A piece that failed too often in a row and is not captured until `frozen_until`."""

    model_config = _READ_FORWARD

    piece: str
    frozen_until: float
    reason: str | None = None
    frozen_at: float | None = None
    failures: int = Field(default=0, description="Consecutive failures when it was frozen.")


class InstanceRecord(BaseModel):
    """One oven instance as it last reported itself (every cluster.heartbeat_s): an API
    instance reads the others' to know whether any worker runs the shared queue."""

    model_config = _READ_FORWARD

    id: str = Field(min_length=1)
    # A plain string: a role a newer version adds must not fail an older reader's list.
    role: str
    pages: int = Field(ge=0, description="Page slots it captures with (0: it claims nothing).")
    running: int = Field(ge=0, description="Jobs it held at its last heartbeat.")
    heartbeat_at: float
    last_claim_at: float | None = None
    started_at: float | None = None


@dataclass(frozen=True)
class QueuedJobs:
    """The queue as `Store.queued_jobs` reads it: every queued job's revision, oldest first
    (creation time, then id), and full records only for the jobs the caller did not already
    hold at that revision. A revision changes with every write to the job."""

    revisions: dict[str, int]
    records: dict[str, JobRecord]
