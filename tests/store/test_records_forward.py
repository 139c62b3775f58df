"""A record written by a newer oven (a field this version does not know) still reads here, on
both backends: during a rolling upgrade, older instances read what newer ones wrote.
Requests at the edge stay strict (tests/test_one_grab_path.py, tests/security)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from pymongo import MongoClient

from oven.jobs import JobState
from oven.store import Store, StoreSettings

from .conftest import MakeJob, OpenStore


def _write_newer_fields(settings: StoreSettings, data_dir: Path, job_id: str) -> None:
    """What a newer instance would leave: a field of the job and one of a history entry."""
    if settings.backend == "sqlite":
        with sqlite3.connect(data_dir / settings.sqlite_path) as conn:
            conn.execute("ALTER TABLE grabs ADD COLUMN newer_field TEXT")
            (history,) = conn.execute("SELECT history FROM grabs WHERE id = ?",
                                      (job_id,)).fetchone()
            entries = [{**entry, "newer_note": "from a newer oven"}
                       for entry in json.loads(history)]
            conn.execute("UPDATE grabs SET newer_field = 'x', history = ? WHERE id = ?",
                         (json.dumps(entries), job_id))
        return
    assert settings.mongodb_uri is not None
    client: MongoClient[dict[str, object]]
    with MongoClient(settings.mongodb_uri.get_secret_value(),
                     serverSelectionTimeoutMS=2000) as client:
        grabs = client[settings.mongodb_database]["grabs"]
        done = grabs.update_one({"_id": job_id}, {"$set": {
            "newer_field": "x", "history.0.newer_note": "from a newer oven"}})
        assert done.matched_count == 1


async def test_a_job_written_with_fields_this_version_does_not_know_still_reads_and_runs(
    store: Store, open_store: OpenStore, store_settings: StoreSettings, tmp_path: Path,
    make_job: MakeJob,
) -> None:
    job = make_job()
    await store.insert_job(job)
    _write_newer_fields(store_settings, tmp_path, job.id)

    read = await store.get_job(job.id)
    assert read is not None and read.id == job.id and read.history == job.history
    assert "newer_field" not in read.model_dump()
    assert [r.id for r in await store.list_jobs()] == [job.id]
    assert list((await store.queued_jobs(limit=10, known={})).records) == [job.id]
    claimed = await store.claim_next("a", ["interactive"], lease_s=30)
    assert claimed is not None and claimed.id == job.id
    done = await store.transition(job.id, JobState.COMPLETE, expect_claim=claimed.claim,
                                  note="done", stage=None)
    assert done.state is JobState.COMPLETE
    reopened = await open_store()  # another instance of this version, on the same data
    again = await reopened.get_job(job.id)
    assert again is not None and again.state is JobState.COMPLETE
    assert again.updated_at <= time.time()
