"""Instance heartbeats: one record per oven instance (its role, pages, running jobs, last
heartbeat and last claim), the same contract on SQLite and MongoDB, shared by every instance on
the store (an API instance reads the workers' records to know whether anyone runs its queue)."""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import SecretStr

from oven.store import InstanceRecord, Store, StoreSettings, make_store, store_operations

from .conftest import OpenStore
from .test_side_tables import defining_class

INSTANCE_OPERATIONS = frozenset({"beat_instance", "list_instances", "forget_instances"})


def beat(instance_id: str, *, role: str = "worker", at: float | None = None, pages: int = 2,
         running: int = 0, last_claim_at: float | None = None) -> InstanceRecord:
    now = time.time() if at is None else at
    return InstanceRecord(id=instance_id, role=role, pages=pages, running=running,
                          heartbeat_at=now, last_claim_at=last_claim_at, started_at=now - 5)


async def test_an_instance_beat_is_read_back_by_another_store_on_the_same_data(
        open_store: OpenStore) -> None:
    writer, reader = await open_store(), await open_store()
    record = beat("w1", running=1, last_claim_at=time.time() - 1)
    await writer.beat_instance(record)
    assert await reader.list_instances(seen_since=0) == [record]


async def test_a_later_beat_replaces_the_instance_record_rather_than_adding_one(
        store: Store) -> None:
    first = beat("w1", at=time.time() - 10, running=2)
    await store.beat_instance(first)
    later = beat("w1", running=0, pages=3, last_claim_at=time.time())
    await store.beat_instance(later)
    assert await store.list_instances(seen_since=0) == [later]


async def test_instances_silent_since_before_are_left_out_and_the_rest_come_by_id(
        store: Store) -> None:
    now = time.time()
    for instance_id, age in (("worker-b", 1), ("api", 2), ("gone", 120), ("worker-a", 3)):
        await store.beat_instance(beat(instance_id, role="worker", at=now - age))
    listed = await store.list_instances(seen_since=now - 60)
    assert [r.id for r in listed] == ["api", "worker-a", "worker-b"]
    assert [r.id for r in await store.list_instances(seen_since=0)] == [
        "api", "gone", "worker-a", "worker-b"]


async def test_forgetting_silent_instances_removes_only_those_and_counts_them(
        store: Store) -> None:
    now = time.time()
    for instance_id, age in (("live", 1), ("old-1", 7200), ("old-2", 4000)):
        await store.beat_instance(beat(instance_id, at=now - age))
    assert await store.forget_instances(silent_before=now - 3600) == 2
    assert [r.id for r in await store.list_instances(seen_since=0)] == ["live"]
    assert await store.forget_instances(silent_before=now - 3600) == 0


async def test_an_instance_record_of_an_api_has_no_pages_and_no_claim(store: Store) -> None:
    record = beat("api-1", role="api", pages=0)
    await store.beat_instance(record)
    (read,) = await store.list_instances(seen_since=0)
    assert read.role == "api" and read.pages == 0 and read.last_claim_at is None


def test_both_backends_take_the_instance_operations_from_one_shared_class(
        tmp_path: Path) -> None:
    assert store_operations() >= INSTANCE_OPERATIONS
    backends = [
        type(make_store(StoreSettings(backend="sqlite"), tmp_path)),
        type(make_store(StoreSettings(backend="mongodb",
                                      mongodb_uri=SecretStr("mongodb://127.0.0.1:9")), tmp_path)),
    ]
    for name in sorted(INSTANCE_OPERATIONS):
        owners = {defining_class(backend, name) for backend in backends}
        assert len(owners) == 1 and owners.isdisjoint(backends), (name, owners)
