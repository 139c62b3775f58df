"""The Store contract, run once per backend (SQLite file, MongoDB wire server)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from oven.jobs import InvalidTransition, JobState
from oven.store import (
    JobExists,
    JobNotFound,
    StaleState,
    Store,
    StoreSettings,
    StoreUnavailable,
    make_store,
)

from .conftest import MakeJob, OpenStore


async def test_an_inserted_job_reads_back_unchanged(store: Store, make_job: MakeJob) -> None:
    job = make_job(piece=None, request={"url": "https://example.org/", "frames": [1, 2, {"a": 3}]})

    await store.insert_job(job)

    assert await store.get_job(job.id) == job
    assert await store.get_job("no-such-job") is None


async def test_inserting_the_same_id_twice_raises_job_exists(
    store: Store, make_job: MakeJob
) -> None:
    job = make_job()
    await store.insert_job(job)

    with pytest.raises(JobExists):
        await store.insert_job(job)


async def test_a_transition_appends_history_and_applies_fields(
    store: Store, make_job: MakeJob
) -> None:
    job = make_job()
    await store.insert_job(job)

    running = await store.transition(
        job.id, JobState.RUNNING, note="claimed", owner="w1", stage="navigate", attempts=1
    )
    result = {"storage_key": "k.png", "url": "/r/k.png", "size": 12, "content_type": "image/png"}
    done = await store.transition(
        job.id, JobState.COMPLETE, expect=JobState.RUNNING, result=result, timings={"encode": 0.5}
    )

    assert running.state is JobState.RUNNING and running.owner == "w1"
    assert [(h.state, h.note) for h in done.history] == [
        (JobState.QUEUED, "admitted"),
        (JobState.RUNNING, "claimed"),
        (JobState.COMPLETE, None),
    ]
    assert done.updated_at >= running.updated_at >= job.updated_at
    # approx: nx-27017 keeps 15 significant digits of a $set top-level double (10 us here).
    assert done.history[-1].at == pytest.approx(done.updated_at, abs=1e-4)
    stored = await store.get_job(job.id)
    assert stored == done
    assert stored.result == result and stored.timings == {"encode": 0.5}
    assert stored.attempts == 1 and stored.stage == "navigate"


async def test_a_transition_outside_the_state_table_raises_invalid_transition(
    store: Store, make_job: MakeJob
) -> None:
    job = make_job()
    await store.insert_job(job)

    with pytest.raises(InvalidTransition):
        await store.transition(job.id, JobState.UPLOAD_PENDING)
    await store.transition(job.id, JobState.CANCELLED)
    with pytest.raises(InvalidTransition):
        await store.transition(job.id, JobState.RUNNING)

    stored = await store.get_job(job.id)
    assert stored is not None and stored.state is JobState.CANCELLED
    assert [h.state for h in stored.history] == [JobState.QUEUED, JobState.CANCELLED]


async def test_a_transition_of_an_unknown_job_raises_job_not_found(store: Store) -> None:
    with pytest.raises(JobNotFound):
        await store.transition("no-such-job", JobState.RUNNING)


async def test_a_transition_with_a_stale_expect_raises_stale_state(
    store: Store, make_job: MakeJob
) -> None:
    job = make_job()
    await store.insert_job(job)
    await store.transition(job.id, JobState.RUNNING, expect=JobState.QUEUED)

    with pytest.raises(StaleState) as caught:
        await store.transition(job.id, JobState.RUNNING, expect=JobState.QUEUED)

    assert caught.value.actual is JobState.RUNNING


async def test_two_concurrent_claims_of_one_queued_job_have_exactly_one_winner(
    store: Store, make_job: MakeJob
) -> None:
    job = make_job()
    await store.insert_job(job)

    outcomes = await asyncio.gather(
        *(
            store.transition(job.id, JobState.RUNNING, expect=JobState.QUEUED, owner=f"w{i}")
            for i in range(8)
        ),
        return_exceptions=True,
    )

    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(o, StaleState) for o in outcomes if o is not winners[0])
    stored = await store.get_job(job.id)
    assert stored is not None and stored.owner == winners[0].owner
    assert [h.state for h in stored.history] == [JobState.QUEUED, JobState.RUNNING]


async def test_two_store_instances_on_the_same_data_never_both_win_a_transition(
    open_store: OpenStore, make_job: MakeJob
) -> None:
    first, second = await open_store(), await open_store()
    jobs = [make_job() for _ in range(20)]
    for job in jobs:
        await first.insert_job(job)

    async def claim(store: Store, owner: str) -> set[str]:
        won = set()
        for job in jobs:
            try:
                await store.transition(
                    job.id, JobState.RUNNING, expect=JobState.QUEUED, owner=owner
                )
            except StaleState:
                continue
            won.add(job.id)
        return won

    won_first, won_second = await asyncio.gather(claim(first, "a"), claim(second, "b"))

    assert not won_first & won_second
    assert won_first | won_second == {job.id for job in jobs}
    for job in jobs:
        stored = await second.get_job(job.id)
        assert stored is not None and [h.state for h in stored.history].count(JobState.RUNNING) == 1


async def test_update_job_sets_plain_fields_and_refuses_state_and_bad_values(
    store: Store, make_job: MakeJob
) -> None:
    job = make_job()
    await store.insert_job(job)

    updated = await store.update_job(
        job.id, stage="capture", timings={"navigate": 0.25}, attempts=2
    )

    assert (updated.stage, updated.timings, updated.attempts) == ("capture", {"navigate": 0.25}, 2)
    assert updated.state is JobState.QUEUED and updated.history == job.history
    assert await store.get_job(job.id) == updated
    with pytest.raises(ValueError, match="transition"):
        await store.update_job(job.id, state=JobState.RUNNING)
    with pytest.raises(ValueError, match="unknown"):
        await store.update_job(job.id, colour="red")
    with pytest.raises(ValueError, match="attempts"):
        await store.update_job(job.id, attempts=-1)
    with pytest.raises(JobNotFound):
        await store.update_job("no-such-job", stage="encode")


async def test_find_active_finds_queued_and_running_jobs_but_not_complete_ones(
    store: Store, make_job: MakeJob
) -> None:
    done = make_job(capture_key="k")
    await store.insert_job(done)
    await store.transition(done.id, JobState.RUNNING)
    await store.transition(done.id, JobState.COMPLETE)
    assert await store.find_active("k") is None

    job = make_job(capture_key="k")
    await store.insert_job(job)
    found = await store.find_active("k")
    assert found is not None and found.id == job.id

    await store.transition(job.id, JobState.RUNNING)
    found = await store.find_active("k")
    assert found is not None and found.state is JobState.RUNNING
    await store.transition(job.id, JobState.UPLOAD_PENDING)
    assert await store.find_active("k") is not None
    await store.transition(job.id, JobState.FAILED, error="upload refused")
    assert await store.find_active("k") is None
    assert await store.find_active("other-key") is None


async def test_list_jobs_filters_by_state_and_orders_by_creation_time(
    store: Store, make_job: MakeJob
) -> None:
    jobs = [make_job() for _ in range(5)]
    for job in jobs:
        await store.insert_job(job)
    await store.transition(jobs[1].id, JobState.RUNNING)
    await store.transition(jobs[3].id, JobState.CANCELLED)

    newest = await store.list_jobs()
    oldest_two = await store.list_jobs(limit=2, newest_first=False)
    queued = await store.list_jobs({JobState.QUEUED})
    live = await store.list_jobs({JobState.QUEUED, JobState.RUNNING}, newest_first=False)

    assert [j.id for j in newest] == [j.id for j in reversed(jobs)]
    assert [j.id for j in oldest_two] == [jobs[0].id, jobs[1].id]
    assert [j.id for j in queued] == [jobs[4].id, jobs[2].id, jobs[0].id]
    assert [j.id for j in live] == [jobs[0].id, jobs[1].id, jobs[2].id, jobs[4].id]
    assert await store.list_jobs(set()) == []


async def test_count_by_state_counts_every_state_including_zeros(
    store: Store, make_job: MakeJob
) -> None:
    assert await store.count_by_state() == dict.fromkeys(JobState, 0)
    jobs = [make_job() for _ in range(4)]
    for job in jobs:
        await store.insert_job(job)
    await store.transition(jobs[0].id, JobState.RUNNING)
    await store.transition(jobs[1].id, JobState.RUNNING)
    await store.transition(jobs[1].id, JobState.COMPLETE)

    counts = await store.count_by_state()

    assert counts == {**dict.fromkeys(JobState, 0), JobState.QUEUED: 2, JobState.RUNNING: 1,
                      JobState.COMPLETE: 1}  # fmt: skip


async def test_the_cache_answers_until_an_entry_expires_or_is_deleted(store: Store) -> None:
    result = {"storage_key": "a/b.webp", "url": "/r/a/b.webp", "size": 2048, "frames": 30}
    assert await store.cache_get("key") is None

    await store.cache_put("key", result, ttl_s=60)
    assert await store.cache_get("key") == result

    await store.cache_put("key", {**result, "size": 4096}, ttl_s=60)
    assert await store.cache_get("key") == {**result, "size": 4096}

    await store.cache_put("stale", result, ttl_s=-1)  # expired the moment it was written
    assert await store.cache_get("stale") is None

    await store.cache_put("short", result, ttl_s=0.2)
    deadline = time.monotonic() + 5
    while await store.cache_get("short") is not None:
        assert time.monotonic() < deadline, "cache entry outlived its ttl"
        await asyncio.sleep(0.05)

    assert await store.cache_delete("key") is True
    assert await store.cache_delete("key") is False
    assert await store.cache_get("key") is None


async def test_piece_failures_count_up_in_a_row_and_reset_on_success(store: Store) -> None:
    assert [await store.record_piece_failure("spiral", f"timeout {i}") for i in range(3)] == [
        1,
        2,
        3,
    ]
    assert await store.record_piece_failure("other", "crash") == 1

    await store.record_piece_success("spiral")
    await store.record_piece_success("never-failed")

    assert await store.record_piece_failure("spiral", "timeout") == 1


async def test_a_frozen_piece_is_listed_until_it_is_unfrozen(store: Store) -> None:
    for _ in range(3):
        await store.record_piece_failure("spiral", "ready timeout")
    until = time.time() + 600
    await store.freeze("spiral", until, "3 ready timeouts in a row")
    await store.freeze("thawed", time.time() - 1, "already over")

    assert await store.frozen_until("spiral") == pytest.approx(until)
    assert await store.frozen_until("thawed") is None
    assert await store.frozen_until("never-frozen") is None
    [frozen] = await store.list_frozen()
    assert (frozen.piece, frozen.reason, frozen.failures) == (
        "spiral",
        "3 ready timeouts in a row",
        3,
    )
    assert frozen.frozen_until == pytest.approx(until)

    assert await store.unfreeze("spiral") is True
    assert await store.unfreeze("spiral") is False
    assert await store.unfreeze("never-frozen") is False
    assert await store.frozen_until("spiral") is None
    assert await store.list_frozen() == []
    assert await store.record_piece_failure("spiral", "again") == 1  # unfreezing forgives


async def test_jobs_survive_closing_and_reopening_the_store(
    open_store: OpenStore, make_job: MakeJob
) -> None:
    store = await open_store()
    jobs = [make_job() for _ in range(3)]
    for job in jobs:
        await store.insert_job(job)
    running = await store.transition(jobs[1].id, JobState.RUNNING, owner="w1")
    await store.cache_put("key", {"size": 1}, ttl_s=60)
    await store.freeze("spiral", time.time() + 600, "frozen")
    await store.close()

    reopened = await open_store()

    assert await reopened.get_job(jobs[0].id) == jobs[0]
    assert await reopened.get_job(jobs[1].id) == running
    assert [j.id for j in await reopened.list_jobs({JobState.QUEUED}, newest_first=False)] == [
        jobs[0].id,
        jobs[2].id,
    ]
    assert await reopened.cache_get("key") == {"size": 1}
    assert await reopened.frozen_until("spiral") is not None


async def test_a_closed_or_unstarted_store_answers_ping_with_store_unavailable(
    store_settings: StoreSettings, open_store: OpenStore, tmp_path: Path
) -> None:
    unstarted = make_store(store_settings, tmp_path)
    with pytest.raises(StoreUnavailable, match="not started"):
        await unstarted.ping()

    store = await open_store()
    await store.ping()
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.ping()
