"""Every store test runs against both backends: SQLite on a temp file, MongoDB on nx-27017."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from pymongo import MongoClient

from oven.store import JobRecord, Store, StoreSettings, make_store

from .nx_server import NxServer, start_nx

OpenStore = Callable[[], Awaitable[Store]]
MakeJob = Callable[..., JobRecord]


@pytest.fixture(scope="session")
def nx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NxServer]:
    server = start_nx(tmp_path_factory.mktemp("nx-27017"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "mongodb"])
def store_settings(request: pytest.FixtureRequest) -> Iterator[StoreSettings]:
    if request.param == "sqlite":
        yield StoreSettings(backend="sqlite", sqlite_path=Path("oven.db"), timeout_s=2)
        return
    server: NxServer = request.getfixturevalue("nx_server")  # started only if needed
    database = f"oven_test_{uuid.uuid4().hex[:12]}"  # a fresh database per test
    yield StoreSettings(
        backend="mongodb",
        mongodb_uri=SecretStr(server.uri),
        mongodb_database=database,
        timeout_s=2,
    )
    client: MongoClient[dict[str, object]]
    with MongoClient(server.uri, serverSelectionTimeoutMS=2000) as client:
        client.drop_database(database)


@pytest.fixture
async def open_store(store_settings: StoreSettings, tmp_path: Path) -> AsyncIterator[OpenStore]:
    """Opens stores on the same data (a reopen, or a second process); closes them all after."""
    opened: list[Store] = []

    async def open_one() -> Store:
        store = make_store(store_settings, tmp_path)
        await store.start()
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store: OpenStore) -> Store:
    return await open_store()


@pytest.fixture
def make_job() -> MakeJob:
    """Builds queued jobs with distinct ids and increasing creation times."""
    counter = itertools.count()
    base = time.time()

    def build(**overrides: Any) -> JobRecord:
        n = next(counter)
        fields: dict[str, Any] = {
            "id": f"job-{n}-{uuid.uuid4().hex[:8]}",
            "capture_key": f"key-{n}",
            "lane": "interactive",
            "piece": "spiral",
            "request": {"piece": "spiral", "format": "png", "width": 640, "height": 360},
            "deadline_s": 60.0,
            "now": base + n,
        }
        fields.update(overrides)
        return JobRecord.queued(**fields)

    return build
