"""A job's target URL is a field of its record, on both backends; records written before the
field existed (the URL kept in the request dict) read with it all the same."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pydantic import SecretStr
from pymongo import MongoClient

from oven.store import JobRecord, Store, StoreSettings, make_store

from .conftest import MakeJob
from .nx_server import NxServer

TARGET = "http://127.0.0.1:8080/pieces/spiral/?seed=1"


async def test_a_job_keeps_its_target_url_as_a_field_of_its_record(
    store: Store, make_job: MakeJob
) -> None:
    job = make_job(target_url=TARGET)
    assert job.target_url == TARGET and "target_url" not in job.request
    await store.insert_job(job)
    assert await store.get_job(job.id) == job
    claimed = await store.claim_next("a", ["interactive"], lease_s=30)
    assert claimed is not None and claimed.target_url == TARGET
    queued = await store.queued_jobs(limit=10, known={})
    assert queued.records == {}  # claimed: no longer queued
    assert (await store.list_jobs())[0].target_url == TARGET


async def test_a_job_whose_request_carries_the_target_reads_with_the_field(
    store: Store, make_job: MakeJob
) -> None:
    job = make_job(request={"piece": "spiral", "format": "png", "target_url": TARGET})
    assert job.target_url == TARGET
    await store.insert_job(job)
    read = await store.get_job(job.id)
    assert read is not None and read.target_url == TARGET
    assert read.request["target_url"] == TARGET  # left for readers that still look there


_SCHEMA_2_GRABS = """
CREATE TABLE grabs (id TEXT PRIMARY KEY, capture_key TEXT NOT NULL, state TEXT NOT NULL,
    lane TEXT NOT NULL, piece TEXT, request TEXT NOT NULL, attempts INTEGER NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, deadline_at REAL NOT NULL, stage TEXT,
    history TEXT NOT NULL, timings TEXT NOT NULL, result TEXT, error TEXT, owner TEXT,
    lease_expires_at REAL, claim TEXT, rev INTEGER NOT NULL DEFAULT 0);
INSERT INTO grabs VALUES ('old-1', 'key-old', 'queued', 'interactive', 'spiral',
    '{"piece": "spiral", "format": "png", "target_url": "http://127.0.0.1:8080/pieces/spiral/?seed=1"}',
    0, 1.0, 1.0, 1e10, 'queued', '[{"state": "queued", "at": 1.0, "note": "admitted"}]', '{}',
    NULL, NULL, NULL, NULL, NULL, 0);
PRAGMA user_version = 2;
"""


async def test_a_sqlite_file_of_schema_2_gains_target_urls_when_opened(
    tmp_path: Path, make_job: MakeJob
) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(_SCHEMA_2_GRABS)
    store = make_store(StoreSettings(backend="sqlite", sqlite_path=path), tmp_path)
    await store.start()
    try:
        old = await store.get_job("old-1")
        assert old is not None and old.target_url == TARGET
        claimed = await store.claim_next("a", ["interactive"], lease_s=30)
        assert claimed is not None and claimed.id == "old-1" and claimed.target_url == TARGET
        new = make_job(target_url=TARGET + "2")
        await store.insert_job(new)
        assert await store.get_job(new.id) == new
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3


async def test_a_mongodb_document_written_before_the_field_reads_with_it(
    nx_server: NxServer, tmp_path: Path
) -> None:
    database = "oven_test_target_url_old"
    old = JobRecord.queued(id="old-1", capture_key="key-old", lane="interactive",
                           request={"piece": "spiral", "target_url": TARGET}, deadline_s=60)
    doc = old.model_dump(mode="json", exclude={"target_url"})
    doc["_id"], doc["rev"] = doc.pop("id"), 0
    client: MongoClient[dict[str, object]]
    with MongoClient(nx_server.uri, serverSelectionTimeoutMS=2000) as client:
        client.drop_database(database)
        client[database]["grabs"].insert_one(doc)
    settings = StoreSettings(backend="mongodb", mongodb_uri=SecretStr(nx_server.uri),
                             mongodb_database=database, timeout_s=2)
    store = make_store(settings, tmp_path)
    await store.start()
    try:
        read = await store.get_job("old-1")
        assert read is not None and read.target_url == TARGET
    finally:
        await store.close()
        with MongoClient(nx_server.uri, serverSelectionTimeoutMS=2000) as client:
            client.drop_database(database)
