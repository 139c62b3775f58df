"""The book's copy of the shared queue against a read of the real (SQLite) store that began
before a job left the queue through this instance: the read must not bring the job back."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from oven.actors.grab_queue._book import Book
from oven.config import Settings
from oven.jobs import JobState
from oven.readiness import ReadinessBoard
from oven.store import JobRecord, QueuedJobs, StoreSettings, make_store


def _record(job_id: str) -> JobRecord:
    return JobRecord.queued(id=job_id, capture_key=f"key-{job_id}", lane="interactive",
                            request={}, deadline_s=60, target_url="http://pieces.invalid/")


def test_a_read_begun_before_a_cancel_here_does_not_bring_the_job_back(tmp_path: Path) -> None:
    async def run() -> None:
        store = make_store(StoreSettings(backend="sqlite"), tmp_path)
        await store.start()
        try:
            book = Book(Settings(), ReadinessBoard(), "queue-a")
            for job_id in ("a", "b"):
                await store.insert_job(_record(job_id))
            held, known, began = book.held_queue()
            read = await store.queued_jobs(limit=100, known=known)  # lists a and b
            await store.transition("a", JobState.CANCELLED, expect=JobState.QUEUED, note="test")
            book.left_queue("a")
            book.read_queue(held, read, began)
            assert [r.id for r in book.queued] == ["b"]
            # A read begun after the cancel is the store's word again.
            held, known, began = book.held_queue()
            book.read_queue(held, await store.queued_jobs(limit=100, known=known), began)
            assert [r.id for r in book.queued] == ["b"]
            assert book._left == {}  # forgotten once a later read no longer lists it
        finally:
            await store.close()
    asyncio.run(run())


def test_a_job_that_left_before_a_read_began_is_as_the_read_says(tmp_path: Path) -> None:
    # Claimed here, its lease lapsed, requeued: a read begun after the claim lists it again.
    book = Book(Settings(), ReadinessBoard(), "queue-a")
    book.left_queue("a")
    time.sleep(0.001)  # monotonic time moves on
    held, _, began = book.held_queue()
    book.read_queue(held, QueuedJobs(revisions={"a": 3}, records={"a": _record("a")}), began)
    assert [r.id for r in book.queued] == ["a"]
