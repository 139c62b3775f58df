"""What only one backend has: SQLite files shared by processes, a MongoDB server that stops."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from pymongo import MongoClient

from oven.jobs import JobState
from oven.store import StaleState, StoreSettings, StoreUnavailable, make_store

from .conftest import MakeJob
from .nx_server import NxServer, start_nx

CLAIM_WORKER = Path(__file__).with_name("claim_worker.py")


async def test_two_processes_on_one_sqlite_file_never_both_win_a_transition(
    tmp_path: Path, make_job: MakeJob
) -> None:
    db = tmp_path / "shared.db"
    store = make_store(StoreSettings(sqlite_path=db, timeout_s=10), tmp_path)
    await store.start()
    jobs = [make_job() for _ in range(40)]
    for job in jobs:
        await store.insert_job(job)
    worker = subprocess.Popen(
        [sys.executable, str(CLAIM_WORKER), str(db), "other", *(job.id for job in jobs)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert worker.stdout is not None and worker.stdin is not None
        assert await asyncio.to_thread(worker.stdout.readline) == "ready\n"
        worker.stdin.write("go\n")
        worker.stdin.flush()
        won_here = set()
        for job in jobs:
            try:
                await store.transition(job.id, JobState.RUNNING, expect=JobState.QUEUED, owner="me")
            except StaleState:
                continue
            won_here.add(job.id)
        won_there = set(json.loads(await asyncio.to_thread(worker.stdout.readline)))
        assert await asyncio.to_thread(worker.wait, 30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    try:
        assert not won_here & won_there
        assert won_here | won_there == {job.id for job in jobs}
        for job in jobs:
            stored = await store.get_job(job.id)
            assert stored is not None
            assert stored.owner == ("me" if job.id in won_here else "other")
            assert [h.state for h in stored.history] == [JobState.QUEUED, JobState.RUNNING]
    finally:
        await store.close()


async def test_a_sqlite_writer_blocked_past_the_busy_timeout_gets_store_unavailable(
    tmp_path: Path, make_job: MakeJob
) -> None:
    db = tmp_path / "locked.db"
    store = make_store(StoreSettings(sqlite_path=db, timeout_s=0.3), tmp_path)
    await store.start()
    other_process = sqlite3.connect(db, isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")  # holds the write lock
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="write lock"):
            await store.insert_job(make_job())
        # It waited the 0.3 s busy timeout and then gave up instead of waiting for the lock:
        # the upper bound only tells "gave up" from "waited on", generous for a loaded box.
        assert 0.25 < time.monotonic() - started < 10
        assert ticks >= 10  # the event loop kept running while the store waited
    finally:
        ticker.cancel()
        other_process.execute("ROLLBACK")
        other_process.close()
    await store.insert_job(make_job())  # usable again once the lock is gone
    await store.close()


async def test_sqlite_starts_in_wal_mode_with_its_indexes(tmp_path: Path) -> None:
    store = make_store(StoreSettings(), tmp_path)
    await store.start()
    await store.close()

    with sqlite3.connect(tmp_path / "oven.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {
            (table, tuple(col for _, _, col in conn.execute(f"PRAGMA index_info('{name}')")))
            for table in ("grabs", "cache", "frozen")
            for _, name, *_ in conn.execute(f"PRAGMA index_list('{table}')")
        }
    assert {
        ("grabs", ("id",)),
        ("grabs", ("capture_key", "state")),
        ("grabs", ("state", "created_at")),
        ("cache", ("key",)),
        ("frozen", ("piece",)),
    } <= indexes


async def test_sqlite_ping_reports_a_database_file_removed_while_open(tmp_path: Path) -> None:
    store = make_store(StoreSettings(), tmp_path)
    await store.start()
    await store.ping()

    (tmp_path / "oven.db").unlink()

    with pytest.raises(StoreUnavailable, match="removed while open"):
        await store.ping()
    await store.close()


async def test_mongodb_creates_its_indexes_at_start(nx_server: NxServer) -> None:
    settings = StoreSettings(
        backend="mongodb", mongodb_uri=SecretStr(nx_server.uri), mongodb_database="oven_indexes"
    )
    store = make_store(settings, Path("."))
    await store.start()
    await store.close()

    client: MongoClient[dict[str, object]]
    with MongoClient(nx_server.uri) as client:
        # Compare key fields only: nx-27017 renames indexes and reports every key ascending.
        keys = {
            (name, tuple(field for field, _ in info["key"]))
            for name in ("grabs", "cache", "frozen")
            for info in client["oven_indexes"][name].index_information().values()
        }
        client.drop_database("oven_indexes")
    assert {
        ("grabs", ("_id",)),
        ("grabs", ("capture_key", "state")),
        ("grabs", ("state", "created_at")),
        ("cache", ("expire_at",)),
        ("frozen", ("frozen_until",)),
    } <= keys


async def test_ping_against_a_stopped_mongodb_server_raises_store_unavailable_within_the_timeout(
    tmp_path: Path,
) -> None:
    server = start_nx(tmp_path / "nx")
    settings = StoreSettings(
        backend="mongodb", mongodb_uri=SecretStr(server.uri), mongodb_database="oven", timeout_s=1
    )
    store = make_store(settings, tmp_path)
    try:
        await store.start()
        await store.ping()
    finally:
        server.stop()

    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="not reachable within 1 s") as caught:
        await store.ping()
    assert time.monotonic() - started < 1 + 1.5
    assert "store.mongodb_uri" in str(caught.value)

    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await make_store(settings, tmp_path).start()
    assert time.monotonic() - started < 1 + 1.5
    await store.close()


def test_a_relative_sqlite_path_is_taken_under_the_data_dir(tmp_path: Path) -> None:
    relative = make_store(StoreSettings(sqlite_path=Path("db/oven.db")), tmp_path)
    absolute = make_store(StoreSettings(sqlite_path=tmp_path / "elsewhere.db"), Path("/data"))

    assert str(tmp_path / "db" / "oven.db") in repr(relative)
    assert str(tmp_path / "elsewhere.db") in repr(absolute)


def test_store_settings_reject_unknown_keys_and_mask_the_uri() -> None:
    with pytest.raises(ValidationError, match="sqlite_pth"):
        StoreSettings.model_validate({"sqlite_pth": "x.db"})
    with pytest.raises(ValidationError, match="mongodb://"):
        StoreSettings.model_validate({"mongodb_uri": "http://db:27017"})

    settings = StoreSettings(mongodb_uri=SecretStr("mongodb://oven:hunter2@db:27017"))

    assert "hunter2" not in repr(settings) and "hunter2" not in settings.model_dump_json()
    store = make_store(settings.model_copy(update={"backend": "mongodb"}), Path("."))
    assert "hunter2" not in repr(store)
