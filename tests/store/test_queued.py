"""The queue's refresh read, on both backends: every queued job's id and revision, oldest first,
and full records only for the jobs the caller does not already hold at that revision."""

from __future__ import annotations

from oven.jobs import JobState
from oven.store import QueuedJobs, Store

from .conftest import MakeJob


async def _queued(store: Store, *, limit: int = 100,
                  known: dict[str, int] | None = None) -> QueuedJobs:
    return await store.queued_jobs(limit=limit, known=known or {})


async def test_queued_jobs_lists_every_queued_job_oldest_first_with_its_record(
    store: Store, make_job: MakeJob
) -> None:
    jobs = [make_job(lane=("interactive", "background")[n % 2]) for n in range(4)]
    for job in jobs:
        await store.insert_job(job)
    await store.transition(jobs[1].id, JobState.RUNNING)

    first = await _queued(store)

    assert list(first.revisions) == [jobs[0].id, jobs[2].id, jobs[3].id]
    assert first.records == {j.id: await store.get_job(j.id) for j in (jobs[0], jobs[2], jobs[3])}


async def test_queued_jobs_sends_no_record_the_caller_holds_at_its_revision(
    store: Store, make_job: MakeJob
) -> None:
    jobs = [make_job() for _ in range(3)]
    for job in jobs[:2]:
        await store.insert_job(job)
    first = await _queued(store)

    await store.insert_job(jobs[2])
    again = await _queued(store, known=first.revisions)

    assert list(again.revisions) == [j.id for j in jobs]
    assert set(again.records) == {jobs[2].id}
    assert (await _queued(store, known=again.revisions)).records == {}


async def test_queued_jobs_sends_again_a_job_written_since_the_caller_read_it(
    store: Store, make_job: MakeJob
) -> None:
    updated, requeued, left, kept = (make_job() for _ in range(4))
    for job in (updated, requeued, left, kept):
        await store.insert_job(job)
    first = await _queued(store)

    await store.update_job(updated.id, attempts=3)
    await store.transition(requeued.id, JobState.RUNNING)
    await store.transition(requeued.id, JobState.QUEUED, attempts=1)
    await store.transition(left.id, JobState.CANCELLED)
    again = await _queued(store, known=first.revisions)

    assert list(again.revisions) == [updated.id, requeued.id, kept.id]
    assert set(again.records) == {updated.id, requeued.id}
    assert again.records[updated.id].attempts == 3
    assert again.records[requeued.id].attempts == 1
    for job_id in (updated.id, requeued.id):
        assert again.revisions[job_id] != first.revisions[job_id]


async def test_queued_jobs_keeps_the_oldest_up_to_the_limit_and_ignores_unknown_known_ids(
    store: Store, make_job: MakeJob
) -> None:
    jobs = [make_job() for _ in range(5)]
    for job in jobs:
        await store.insert_job(job)

    page = await _queued(store, limit=2, known={"gone-long-ago": 7, jobs[1].id: -1})

    assert list(page.revisions) == [jobs[0].id, jobs[1].id]
    assert set(page.records) == {jobs[0].id, jobs[1].id}
    assert await _queued(store, limit=0) == QueuedJobs(revisions={}, records={})
