"""Lease policy: who holds a job, until when, and what a job gives up when it stops holding one.

Both backends keep these rules and only persist what they decide. Renewal and expiry are
also conditions in each backend's own query language (an atomic update, an indexed find):
those queries take the states and the expiry from here.
"""

from __future__ import annotations

import uuid
from typing import Any

from oven.jobs import JobState
from oven.store._errors import StaleState
from oven.store._records import JobRecord

# A job in one of these states is held by an instance under a lease it renews.
LEASED_STATES = frozenset({JobState.RUNNING, JobState.UPLOAD_PENDING})
LEASED_STATE_VALUES = tuple(sorted(state.value for state in LEASED_STATES))


def lease_expiry(lease_s: float, *, now: float) -> float:
    """When a lease taken or renewed at `now` for `lease_s` runs out, unless renewed."""
    return now + lease_s


def new_claim_token() -> str:
    return uuid.uuid4().hex


def claim(job: JobRecord, owner: str, *, lease_s: float, now: float) -> tuple[dict[str, Any], str]:
    """The fields and history note of `owner` claiming the queued `job` (state → running).

    Every claim makes a new token, also by the same instance after its lease lapsed, so a
    settle or renewal carrying an older token can never touch the newer attempt.
    """
    fields = {"owner": owner, "lease_expires_at": lease_expiry(lease_s, now=now),
              "attempts": job.attempts + 1, "stage": "navigate", "claim": new_claim_token()}
    return fields, f"claimed by {owner}"


def released(job_id: str, to: JobState, fields: dict[str, Any]) -> dict[str, Any]:
    """A transition's `fields` with what a job going to `to` gives up of its lease.

    A job outside LEASED_STATES has no lease; a queued one has no owner either (whoever claims
    it next owns it). A final job keeps its owner and claim: they say who settled it, and the
    claim makes a retried settle idempotent (`already_settled`). A caller asking to keep what
    the job gives up is refused: that is a bug in the caller, not a state to store.
    """
    if to in LEASED_STATES:
        return fields
    cleared: dict[str, Any] = {"lease_expires_at": None}
    if to is JobState.QUEUED:
        cleared["owner"] = None
    for name in cleared:
        if fields.get(name) is not None:
            raise ValueError(f"job {job_id}: a job going {to.value!r} holds no lease, so its "
                             f"{name} is cleared by the store, not set to {fields[name]!r}")
    return {**fields, **cleared}


def lease_expired_before(job: JobRecord, moment: float) -> bool:
    """True when `job`'s lease ran out before `moment` (what `expired_leases` finds)."""
    return job.lease_expires_at is not None and job.lease_expires_at < moment


def check_holder(
    job: JobRecord,
    *,
    expect_owner: str | None,
    expect_claim: str | None,
    expect_lease_before: float | None,
) -> None:
    """Raise StaleState unless the job is held as the caller expects."""
    if expect_owner is not None and job.owner != expect_owner:
        # The lease passed to another worker: this one's view of the job is out of date.
        raise StaleState(job.id, job.state, job.state, lease_owner=job.owner, lease_lost=True)
    if expect_claim is not None and job.claim != expect_claim:
        # A newer claim holds the job (perhaps this very instance, after its lease lapsed).
        raise StaleState(job.id, job.state, job.state, lease_owner=job.owner, lease_lost=True)
    if expect_lease_before is not None and not lease_expired_before(job, expect_lease_before):
        raise StaleState(job.id, job.state, job.state, lease_owner=job.owner, lease_lost=True)


def already_settled(job: JobRecord, to: JobState, expect_claim: str | None) -> bool:
    """True when a write under `expect_claim` to `to` has already landed: retrying a settle
    after its first try timed out must succeed, not fail on the state it wrote itself."""
    return expect_claim is not None and job.claim == expect_claim and job.state == to
