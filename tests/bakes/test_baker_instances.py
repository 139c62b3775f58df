"""The Baker actor on a store shared by several instances, and its bake-slot reservations.

A real ActorSystem (the Store actor and the Baker, real threads) per instance, on one shared
SQLite file or one MongoDB database (nx-27017); what "another instance" left in the store is
written there directly, as that instance would have.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from oven.actors.baker._actor import Admit, Baker, BakesBusy, Release
from oven.actors.store import StoreActor
from oven.config import Settings, load
from oven.readiness import ReadinessBoard
from oven.store import make_store
from oven.supervisor import ChildSpec
from oven.system import ActorSystem
from tests.pipeline.test_backends import nx
from tests.store.nx_server import NxServer
from tests.waiting import wait_until

__all__ = ["nx"]  # the pipeline tests' module-scoped nx-27017, for the MongoDB cases

Sections = dict[str, dict[str, Any]]


@pytest.fixture(params=["sqlite", "mongodb"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The [store] section every instance of a test uses."""
    if request.param == "sqlite":
        return {"sqlite_path": str(tmp_path / "shared.db")}
    server: NxServer = request.getfixturevalue("nx")  # started only if needed
    return {"backend": "mongodb", "mongodb_uri": server.uri,
            "mongodb_database": f"bakes_{uuid.uuid4().hex[:12]}"}


def write_config(path: Path, sections: Sections) -> Path:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


class BakerInstance:
    """One instance's Store actor and Baker in a real ActorSystem."""

    def __init__(self, workdir: Path, store: dict[str, Any], instance: str,
                 bakes: dict[str, Any] | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        config = load(write_config(workdir / "oven.toml", {
            "server": {"data_dir": str(workdir / "data")},
            "store": store,
            "cluster": {"instance_id": instance, "lease_s": 30.0, "heartbeat_s": 1.0},
            "supervisor": {"ask_timeout_s": 2.0},
            "bakes": bakes or {},
        }), env={})
        settings = config.settings
        board = ReadinessBoard()
        self.settings = settings
        self.system = ActorSystem(config, [
            ChildSpec(id="store", start=lambda ctx: StoreActor.start(ctx, settings, board),
                      mailbox_capacity=100, start_timeout_s=30, shutdown_timeout_s=10),
            ChildSpec(id="bakes", start=lambda ctx: Baker.start(ctx, settings),
                      mailbox_capacity=settings.bakes.mailbox, shutdown_timeout_s=15),
        ])
        self.system.start()

    def stop(self) -> None:
        self.system.stop()


@pytest.fixture
def start_instance(tmp_path: Path) -> Iterator[Callable[..., BakerInstance]]:
    started: list[BakerInstance] = []

    def start(name: str, store: dict[str, Any], **bakes: Any) -> BakerInstance:
        instance = BakerInstance(tmp_path / name, store, name, bakes)
        started.append(instance)
        return instance

    yield start
    for instance in reversed(started):
        instance.stop()


def store_settings(store: dict[str, Any], data_dir: Path) -> Settings:
    path = write_config(data_dir / "store-only.toml",
                        {"server": {"data_dir": str(data_dir)}, "store": store})
    return load(path, env={}).settings


def with_store(store: dict[str, Any], data_dir: Path, work: Callable[[Any], Any]) -> Any:
    """Run `work(store)` on a store of our own over the shared data, as another process would."""
    settings = store_settings(store, data_dir)

    async def run() -> Any:
        opened = make_store(settings.store, data_dir)
        await opened.start()
        try:
            return await work(opened)
        finally:
            await opened.close()

    return asyncio.run(run())


def in_flight(bake_id: str, instance: str | None, state: str = "running", *,
              age_s: float = 0.0) -> dict[str, Any]:
    at = time.time() - age_s
    doc: dict[str, Any] = {"id": bake_id, "state": state, "error": None, "source": "upload",
                           "created_at": at, "started_at": at, "finished_at": None}
    if instance is not None:
        doc["instance_id"] = instance
    return doc


def test_a_starting_baker_fails_only_its_own_interrupted_bakes_and_those_of_gone_instances(
        shared_store: dict[str, Any], tmp_path: Path,
        start_instance: Callable[..., BakerInstance]) -> None:
    other = in_flight("bakeofa", "a", age_s=3000)  # a long bake, its instance still beating
    gone = in_flight("bakeofgone", "gone", "queued", age_s=3600)
    own = in_flight("bakeofb", "b")

    async def seed(store: Any) -> None:
        # Instance "a" is alive (it beat a moment ago); "gone" stopped an hour ago.
        await store.put_doc("bake_instances", "a", {"id": "a", "heartbeat_at": time.time()})
        await store.put_doc("bake_instances", "gone",
                            {"id": "gone", "heartbeat_at": time.time() - 3600})
        for doc in (other, gone, own):
            await store.put_doc("bakes", doc["id"], doc)

    with_store(shared_store, tmp_path, seed)
    start_instance("b", shared_store)

    def read(bake_id: str) -> Any:
        return with_store(shared_store, tmp_path, lambda s: s.get_doc("bakes", bake_id))

    settled = wait_until("b's own interrupted bake to be failed",
                         lambda: (d := read("bakeofb"))["state"] == "failed" and d, timeout=20)
    assert "interrupted" in settled["error"], settled
    abandoned = wait_until("the bake of the gone instance to be failed",
                           lambda: (d := read("bakeofgone"))["state"] == "failed" and d,
                           timeout=20)
    assert read("bakeofa") == other, "a live instance's bake was touched"
    assert "gone" in abandoned["error"], abandoned
    beat = with_store(shared_store, tmp_path, lambda s: s.get_doc("bake_instances", "b"))
    assert beat is not None and time.time() - beat["heartbeat_at"] < 10, beat


def test_bake_slot_reservations_expire_when_nobody_releases_them(
        shared_store: dict[str, Any], start_instance: Callable[..., BakerInstance]) -> None:
    instance = start_instance("b", shared_store, max_active=2, upload_timeout_s=1.0,
                              upload_idle_s=1.0, fetch_timeout_s=1.0, check_timeout_s=1.0)
    system = instance.system
    # Two uploads reserve the two slots and are never heard from again (a handler that died,
    # a Release that did not get through).
    system.ask("bakes", Admit("lost1"), timeout=5)
    system.ask("bakes", Admit("lost2"), timeout=5)
    with pytest.raises(BakesBusy):
        system.ask("bakes", Admit("third"), timeout=5)
    # Upload (1 s) + check (1 s) + the ask that hands the bake over (2 s) is as long as a
    # reservation can be needed.
    started = time.monotonic()

    def admitted() -> bool:
        try:
            system.ask("bakes", Admit("fourth"), timeout=5)
        except BakesBusy:
            return False
        return True

    wait_until("an expired reservation to free its slot", admitted, timeout=15, interval=0.2)
    assert time.monotonic() - started < 6
    system.ask("bakes", Release("fourth"), timeout=5)
