"""What the store raises on purpose."""

from __future__ import annotations

from typing import Any

from oven.jobs import JobState
from oven.store._records import JobRecord


class StoreError(Exception):
    """Base of everything the store raises on purpose."""


class StoreUnavailable(StoreError):
    """The backend cannot be reached or used; the message says what to check."""


class JobNotFound(StoreError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id}: not found")
        self.job_id = job_id


class JobExists(StoreError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id}: already exists")
        self.job_id = job_id


class CaptureKeyBusy(StoreError):
    """Another active job holds the capture key (single-flight across every instance)."""

    def __init__(self, capture_key: str, holder: JobRecord) -> None:
        super().__init__(f"capture key {capture_key}: held by job {holder.id} ({holder.state})")
        self.capture_key = capture_key
        self.holder = holder


class CaptureCached(StoreError):
    """The capture key has a live cached result by the time the insert owns it: the job that
    held the key completed between the caller's cache look-up and the insert. Nothing was
    written; the result answers the request."""

    def __init__(self, capture_key: str, result: dict[str, Any]) -> None:
        super().__init__(f"capture key {capture_key}: already captured (cached)")
        self.capture_key = capture_key
        self.result = result


class StaleState(StoreError):
    """The job was not in the state the caller expected (another writer moved it first)."""

    def __init__(self, job_id: str, expected: JobState, actual: JobState | None, *,
                 lease_owner: str | None = None, lease_lost: bool = False) -> None:
        found = "a concurrent change" if actual is None else repr(actual.value)
        if lease_lost:
            message = f"job {job_id}: its lease is not ours (held by {lease_owner or 'nobody'})"
        else:
            message = f"job {job_id}: expected state {expected.value!r}, found {found}"
        super().__init__(message)
        self.job_id = job_id
        self.expected = expected
        self.actual = actual
        self.lease_owner = lease_owner
        self.lease_lost = lease_lost
