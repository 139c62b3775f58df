"""Job lifecycle: a grab's states, the same words in the store, the API and metrics."""

from __future__ import annotations

import enum


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    UPLOAD_PENDING = "upload_pending"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset({JobState.COMPLETE, JobState.FAILED, JobState.CANCELLED})

# Which state may follow which. RUNNING -> QUEUED is a retry (transient failure or restart);
# UPLOAD_PENDING -> QUEUED a takeover of a job parked by an instance that never came back (its
# encoded file is on that host, so the job is captured again).
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.FAILED}),
    JobState.RUNNING: frozenset(
        {
            JobState.QUEUED,
            JobState.UPLOAD_PENDING,
            JobState.COMPLETE,
            JobState.FAILED,
            JobState.CANCELLED,
        }
    ),
    JobState.UPLOAD_PENDING: frozenset(
        {JobState.QUEUED, JobState.COMPLETE, JobState.FAILED, JobState.CANCELLED}
    ),
    JobState.COMPLETE: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}


class InvalidTransition(Exception):
    def __init__(self, job_id: str, current: JobState, wanted: JobState) -> None:
        super().__init__(f"job {job_id}: cannot go from {current.value!r} to {wanted.value!r}")
        self.job_id = job_id
        self.current = current
        self.wanted = wanted


def check_transition(job_id: str, current: JobState, wanted: JobState) -> None:
    """Raise InvalidTransition when `wanted` may not follow `current`."""
    if wanted not in TRANSITIONS[current]:
        raise InvalidTransition(job_id, current, wanted)
