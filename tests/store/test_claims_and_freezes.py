"""Claim tokens, idempotent settles, parked leases and freezes that run out, on both backends.

Each test here failed on the store before claim tokens (an old attempt of the same instance could
settle a newer one; a retried settle raised InvalidTransition), before parked jobs carried a
lease, and before an expired freeze reset the failure count.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from oven.jobs import JobState
from oven.store import StaleState, Store, StoreSettings, make_store

from .conftest import MakeJob


async def test_every_claim_carries_a_new_token_even_for_the_same_instance(
    store: Store, make_job: MakeJob
) -> None:
    job = make_job()
    await store.insert_job(job)
    first = await store.claim_next("a", ["interactive"], lease_s=0.1)
    assert first is not None and first.claim
    await asyncio.sleep(0.2)
    await store.transition(job.id, JobState.QUEUED, expect_lease_before=time.time())
    second = await store.claim_next("a", ["interactive"], lease_s=30)
    assert second is not None and second.claim and second.claim != first.claim


async def test_an_old_attempt_of_the_same_instance_can_neither_settle_nor_renew_a_newer_one(
    store: Store, make_job: MakeJob
) -> None:
    job = make_job()
    await store.insert_job(job)
    old = await store.claim_next("a", ["interactive"], lease_s=0.1)
    assert old is not None
    await asyncio.sleep(0.2)
    await store.transition(job.id, JobState.QUEUED, expect_lease_before=time.time())
    new = await store.claim_next("a", ["interactive"], lease_s=30)
    assert new is not None

    assert not await store.renew_lease(job.id, "a", lease_s=60, claim=old.claim)
    with pytest.raises(StaleState, match="lease"):
        await store.transition(job.id, JobState.COMPLETE, expect_owner="a",
                               expect_claim=old.claim)
    with pytest.raises(StaleState, match="lease"):
        await store.transition(job.id, JobState.CANCELLED, expect_claim=old.claim)
    assert await store.renew_lease(job.id, "a", lease_s=60, claim=new.claim)
    done = await store.transition(job.id, JobState.COMPLETE, expect_claim=new.claim)
    assert done.state is JobState.COMPLETE


@pytest.mark.parametrize("state", [JobState.COMPLETE, JobState.QUEUED, JobState.UPLOAD_PENDING,
                                   JobState.FAILED])
async def test_a_settle_retried_after_its_first_try_landed_answers_the_record(
    store: Store, make_job: MakeJob, state: JobState
) -> None:
    # The first write timed out at the caller but landed; the caller writes again.
    job = make_job()
    await store.insert_job(job)
    claimed = await store.claim_next("a", ["interactive"], lease_s=30)
    assert claimed is not None
    first = await store.transition(job.id, state, expect_owner="a", expect_claim=claimed.claim,
                                   note="settled")
    again = await store.transition(job.id, state, expect_owner="a",
                                   expect_claim=claimed.claim, note="settled")
    assert again.state is state
    assert [h.state for h in again.history] == [h.state for h in first.history]


async def test_a_parked_job_keeps_a_lease_that_its_owner_renews_and_others_see_expire(
    store: Store, make_job: MakeJob
) -> None:
    job = make_job()
    await store.insert_job(job)
    claimed = await store.claim_next("a", ["interactive"], lease_s=30)
    assert claimed is not None
    await store.transition(job.id, JobState.UPLOAD_PENDING, expect_claim=claimed.claim,
                           lease_expires_at=time.time() + 0.1)
    assert await store.renew_lease(job.id, "a", lease_s=0.1, claim=claimed.claim)
    await asyncio.sleep(0.2)
    expired = await store.expired_leases(now=time.time())
    assert [(j.id, j.state) for j in expired] == [(job.id, JobState.UPLOAD_PENDING)]
    # Taken over: queued again for a fresh capture (its file is on the vanished host).
    requeued = await store.transition(job.id, JobState.QUEUED, expect=JobState.UPLOAD_PENDING,
                                      expect_lease_before=time.time(), owner=None,
                                      lease_expires_at=None)
    assert requeued.state is JobState.QUEUED


async def test_a_failure_after_a_freeze_ran_out_starts_the_count_again(store: Store) -> None:
    for _ in range(3):
        await store.record_piece_failure("spiral", "ready timeout")
    await store.freeze("spiral", time.time() + 0.1, "3 in a row")
    await asyncio.sleep(0.2)
    assert await store.frozen_until("spiral") is None
    assert await store.record_piece_failure("spiral", "ready timeout") == 1


async def test_unfreezing_clears_the_failure_count(store: Store) -> None:
    for _ in range(3):
        await store.record_piece_failure("spiral", "ready timeout")
    await store.freeze("spiral", time.time() + 600, "3 in a row")
    assert await store.unfreeze("spiral") is True
    assert await store.record_piece_failure("spiral", "ready timeout") == 1
    # An admin unfreeze of a piece whose freeze already ran out clears its count too.
    for _ in range(2):
        await store.record_piece_failure("spiral", "ready timeout")
    await store.freeze("spiral", time.time() - 1, "over")
    assert await store.unfreeze("spiral") is False
    assert await store.record_piece_failure("spiral", "ready timeout") == 1


_SCHEMA_1_GRABS = """
CREATE TABLE grabs (id TEXT PRIMARY KEY, capture_key TEXT NOT NULL, state TEXT NOT NULL,
    lane TEXT NOT NULL, piece TEXT, request TEXT NOT NULL, attempts INTEGER NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, deadline_at REAL NOT NULL, stage TEXT,
    history TEXT NOT NULL, timings TEXT NOT NULL, result TEXT, error TEXT, owner TEXT,
    lease_expires_at REAL, rev INTEGER NOT NULL DEFAULT 0);
PRAGMA user_version = 1;
"""


async def test_a_sqlite_file_of_schema_1_gains_claim_tokens_when_opened(
    tmp_path: Path, make_job: MakeJob
) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(_SCHEMA_1_GRABS)
    store = make_store(StoreSettings(backend="sqlite", sqlite_path=path), tmp_path)
    await store.start()
    try:
        job = make_job()
        await store.insert_job(job)
        claimed = await store.claim_next("a", ["interactive"], lease_s=30)
        assert claimed is not None and claimed.claim
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
