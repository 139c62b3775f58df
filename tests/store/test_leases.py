"""Leases and capture-key flights: the shared-queue half of the Store contract, on both backends."""

from __future__ import annotations

import asyncio
import time

import pytest

from oven.jobs import JobState
from oven.store import CaptureCached, CaptureKeyBusy, StaleState, Store

from .conftest import MakeJob, OpenStore


async def test_claims_take_the_oldest_job_of_the_first_lane_that_has_one(
    store: Store, make_job: MakeJob
) -> None:
    background = make_job(lane="background")
    first, second = make_job(), make_job()
    for job in (background, first, second):
        await store.insert_job(job)

    claimed = await store.claim_next("a", ["interactive", "background"], lease_s=30)
    assert claimed is not None and claimed.id == first.id
    assert claimed.state is JobState.RUNNING and claimed.owner == "a" and claimed.attempts == 1
    assert claimed.lease_expires_at is not None and claimed.lease_expires_at > time.time() + 25
    assert claimed.history[-1].note == "claimed by a"
    only_background = await store.claim_next("b", ["background"], lease_s=30)
    assert only_background is not None and only_background.id == background.id
    nxt = await store.claim_next("b", ["interactive", "background"], lease_s=30)
    assert nxt is not None and nxt.id == second.id
    assert await store.claim_next("b", ["interactive", "background"], lease_s=30) is None


async def test_two_workers_claiming_at_once_never_get_the_same_job(
    open_store: OpenStore, make_job: MakeJob
) -> None:
    one, two = await open_store(), await open_store()  # two clients of the same data
    jobs = [make_job() for _ in range(12)]
    for job in jobs:
        await one.insert_job(job)

    async def drain(store: Store, owner: str) -> list[str]:
        won = []
        while (job := await store.claim_next(owner, ["interactive"], lease_s=30)) is not None:
            won.append(job.id)
        return won

    a, b = await asyncio.gather(drain(one, "a"), drain(two, "b"))
    assert sorted(a + b) == sorted(j.id for j in jobs)
    assert not set(a) & set(b)


async def test_only_the_owner_renews_a_lease_and_only_while_running(
    store: Store, make_job: MakeJob
) -> None:
    job = make_job()
    await store.insert_job(job)
    claimed = await store.claim_next("a", ["interactive"], lease_s=1)
    assert claimed is not None

    assert await store.renew_lease(job.id, "a", lease_s=60)
    assert not await store.renew_lease(job.id, "b", lease_s=60)
    renewed = await store.get_job(job.id)
    assert renewed is not None and renewed.lease_expires_at is not None
    assert renewed.lease_expires_at > time.time() + 50
    await store.transition(job.id, JobState.COMPLETE, expect_owner="a")
    assert not await store.renew_lease(job.id, "a", lease_s=60)


async def test_an_expired_lease_is_found_and_requeued_once(
    open_store: OpenStore, make_job: MakeJob
) -> None:
    one, two = await open_store(), await open_store()
    job = make_job()
    await one.insert_job(job)
    await one.claim_next("dead", ["interactive"], lease_s=30)
    assert await one.expired_leases(now=time.time()) == []

    # A reader a minute ahead sees the lease run out, with no sleep that a slow machine could
    # stretch past a short lease before the first check.
    now = time.time() + 60
    expired = await two.expired_leases(now=now)
    assert [j.id for j in expired] == [job.id]
    requeued = await two.transition(job.id, JobState.QUEUED, expect=JobState.RUNNING,
                                    expect_lease_before=now, note="lease of dead expired")
    assert requeued.state is JobState.QUEUED
    with pytest.raises(StaleState):  # a second instance noticing it too loses
        await one.transition(job.id, JobState.QUEUED, expect=JobState.RUNNING,
                             expect_lease_before=now)
    again = await two.claim_next("live", ["interactive"], lease_s=30)
    assert again is not None and again.owner == "live" and again.attempts == 2


async def test_a_fresh_lease_is_not_requeued_even_by_a_stale_reader(
    store: Store, make_job: MakeJob
) -> None:
    job = make_job()
    await store.insert_job(job)
    await store.claim_next("a", ["interactive"], lease_s=30)
    with pytest.raises(StaleState, match="lease"):
        await store.transition(job.id, JobState.QUEUED, expect_lease_before=time.time())


async def test_a_worker_that_lost_its_lease_cannot_finish_the_job(
    store: Store, make_job: MakeJob
) -> None:
    job = make_job()
    await store.insert_job(job)
    await store.claim_next("a", ["interactive"], lease_s=30)
    # Requeued as a reader a minute from now would: the lease has run out for it, with no
    # sleeping for a short lease to expire (a race on a loaded machine).
    await store.transition(job.id, JobState.QUEUED, expect_lease_before=time.time() + 60)
    await store.claim_next("b", ["interactive"], lease_s=30)

    with pytest.raises(StaleState, match="held by b"):
        await store.transition(job.id, JobState.COMPLETE, expect_owner="a")
    done = await store.transition(job.id, JobState.COMPLETE, expect_owner="b")
    assert done.state is JobState.COMPLETE and done.owner == "b"


async def test_a_capture_key_has_one_active_job_until_that_job_is_final(
    open_store: OpenStore, make_job: MakeJob
) -> None:
    one, two = await open_store(), await open_store()
    first = make_job(capture_key="shared")
    await one.insert_job(first)

    with pytest.raises(CaptureKeyBusy) as busy:
        await two.insert_job(make_job(capture_key="shared"))
    assert busy.value.holder.id == first.id
    await one.claim_next("a", ["interactive"], lease_s=30)
    with pytest.raises(CaptureKeyBusy):  # running still holds it
        await two.insert_job(make_job(capture_key="shared"))

    await one.transition(first.id, JobState.FAILED, error="boom")
    second = make_job(capture_key="shared")
    await two.insert_job(second)  # released by the final transition
    assert (await two.get_job(second.id)) is not None


async def test_inserts_of_one_key_racing_from_two_clients_admit_exactly_one(
    open_store: OpenStore, make_job: MakeJob
) -> None:
    one, two = await open_store(), await open_store()
    jobs = [make_job(capture_key="race") for _ in range(6)]

    async def insert(store: Store, job_index: int) -> bool:
        try:
            await store.insert_job(jobs[job_index])
        except CaptureKeyBusy:
            return False
        return True

    won = await asyncio.gather(*(insert(one if i % 2 else two, i) for i in range(6)))
    assert sum(won) == 1


LEAVING = [
    (JobState.RUNNING, JobState.COMPLETE),
    (JobState.RUNNING, JobState.FAILED),
    (JobState.RUNNING, JobState.CANCELLED),
    (JobState.RUNNING, JobState.QUEUED),
    (JobState.UPLOAD_PENDING, JobState.COMPLETE),
    (JobState.UPLOAD_PENDING, JobState.CANCELLED),
    (JobState.UPLOAD_PENDING, JobState.QUEUED),
]


@pytest.mark.parametrize(("held", "to"), LEAVING, ids=[f"{a.value}-{b.value}" for a, b in LEAVING])
async def test_a_job_leaving_its_lease_loses_it_without_the_caller_clearing_it(
    store: Store, make_job: MakeJob, held: JobState, to: JobState
) -> None:
    job = make_job()
    await store.insert_job(job)
    claimed = await store.claim_next("a", ["interactive"], lease_s=30)
    assert claimed is not None
    if held is JobState.UPLOAD_PENDING:
        await store.transition(job.id, held, expect_claim=claimed.claim,
                               lease_expires_at=time.time() + 30)

    left = await store.transition(job.id, to, expect_claim=claimed.claim, note="left")
    assert left.lease_expires_at is None
    # A final job keeps the name of the instance that settled it; a queued one is nobody's.
    assert left.owner == (None if to is JobState.QUEUED else "a")
    assert left.claim == claimed.claim  # what makes a retried settle idempotent
    assert await store.get_job(job.id) == left
    assert await store.expired_leases(now=time.time() + 3600) == []
    assert not await store.renew_lease(job.id, "a", lease_s=30, claim=claimed.claim)


@pytest.mark.parametrize(("to", "fields"), [
    (JobState.QUEUED, {"lease_expires_at": 1e10}),
    (JobState.QUEUED, {"owner": "a"}),
    (JobState.COMPLETE, {"lease_expires_at": 1e10}),
    (JobState.FAILED, {"lease_expires_at": 1e10, "error": "x"}),
], ids=["queued-lease", "queued-owner", "complete-lease", "failed-lease"])
async def test_a_transition_cannot_leave_a_lease_on_a_job_that_holds_none(
    store: Store, make_job: MakeJob, to: JobState, fields: dict[str, object]
) -> None:
    job = make_job()
    await store.insert_job(job)
    claimed = await store.claim_next("a", ["interactive"], lease_s=30)
    assert claimed is not None
    with pytest.raises(ValueError, match="lease"):
        await store.transition(job.id, to, expect_claim=claimed.claim, **fields)
    assert await store.get_job(job.id) == claimed  # nothing written


async def test_an_insert_after_the_key_holder_completed_is_answered_by_its_cached_result(
    open_store: OpenStore, make_job: MakeJob
) -> None:
    """The window between an admission's cache look-up and its insert: the holder completes
    (result cached, key released) in between, and the insert must not start a second capture."""
    one, two = await open_store(), await open_store()
    first = make_job(capture_key="done")
    await one.insert_job(first)
    await one.claim_next("a", ["interactive"], lease_s=30)
    await one.cache_put("done", {"url": "https://cdn.example/done.png"}, 60)
    await one.transition(first.id, JobState.COMPLETE, result={"url": "x"})

    late = make_job(capture_key="done")
    with pytest.raises(CaptureCached) as cached:
        await two.insert_job(late)
    assert cached.value.result == {"url": "https://cdn.example/done.png"}
    assert cached.value.capture_key == "done"
    assert await two.get_job(late.id) is None  # nothing was written
    assert await two.find_active("done") is None

    await two.cache_put("done", {"url": "gone"}, -1)  # an expired result does not answer
    await two.insert_job(late)
    assert (await two.get_job(late.id)) is not None
