"""Stopping the Baker mid-bake: every task it started ends with it, and so does every ffmpeg.

A real ActorSystem (Store, Uploader, Encoder and the Baker, real threads, real ffmpeg); the
Baker alone is stopped while one bake encodes and others wait for the encoder's only slot.
"""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from oven._tree import children
from oven.actors.baker import Baker, Enqueue, work_root
from oven.actors.store import StoreCall
from oven.bakes import plan_bake, unpack
from oven.config import load
from oven.readiness import ReadinessBoard
from oven.system import ActorSystem
from tests.waiting import wait_until

from .bake_kit import frames, zip_bytes

NEEDED = {"store", "uploader", "encoder", "bakes"}


@pytest.fixture
def system(tmp_path: Path) -> Iterator[ActorSystem]:
    (tmp_path / "oven.toml").write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\n'
        "[encoder]\nconcurrency = 1\n"
        "[bakes]\nmax_active = 4\n")
    config = load(tmp_path / "oven.toml", env={})
    specs = [spec for spec in children(config.settings, ReadinessBoard()) if spec.id in NEEDED]
    started = ActorSystem(config, specs)
    started.start()
    try:
        yield started
    finally:
        started.stop()


def ffmpegs() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True)
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
            and "ffmpeg" in " ".join(p.cmdline())]


@pytest.fixture(scope="module")
def slow_archive() -> bytes:
    # Noise upscaled 4x: x264 cannot predict it, so the encode lasts long enough to be stopped.
    return zip_bytes(frames(300, (160, 120), noisy=True))


def enqueue(system: ActorSystem, tmp_path: Path, archive_bytes: bytes) -> str:
    settings = system.settings
    bake_id = uuid.uuid4().hex
    work = work_root(settings) / bake_id
    work.mkdir(parents=True)
    archive = tmp_path / f"{bake_id}.zip"
    archive.write_bytes(archive_bytes)
    tape = unpack(archive, work / "tape", settings.bakes)
    plan = plan_bake(tape, 4, settings.bakes)
    system.ask("bakes", Enqueue(bake_id, work, tape, plan, "upload"), timeout=30)
    return bake_id


def find_baker(system: ActorSystem) -> Baker:
    # Pykka hands out refs only; the actor object is found to look at its loop.
    ref = system.ref("bakes")
    # type(), not isinstance(): the heap may hold weak proxies whose object is gone, and
    # isinstance() on one raises ReferenceError (seen once in a long run).
    return next(o for o in gc.get_objects()
                if type(o) is Baker and o.actor_urn == ref.actor_urn)


def stop_baker(system: ActorSystem) -> float:
    """Stop the Baker alone; assert its loop ended with no task left. Returns the seconds."""
    ref = system.ref("bakes")
    baker = find_baker(system)
    started = time.monotonic()
    ref.stop(timeout=30)
    took = time.monotonic() - started
    left = asyncio.all_tasks(baker.loop)
    assert not left, f"the stopped Baker left tasks behind: {left}"
    assert not baker.loop_thread.alive
    return took


def test_stopping_an_idle_baker_leaves_no_task(system: ActorSystem) -> None:
    baker = find_baker(system)
    # Its loops are running, so the stop has tasks to end (else the test proves nothing).
    wait_until("the Baker's loops to run", lambda: asyncio.all_tasks(baker.loop), timeout=10,
               interval=0.05)
    stop_baker(system)


def test_stopping_the_baker_mid_bake_leaves_no_task_and_no_ffmpeg(
        system: ActorSystem, tmp_path: Path, slow_archive: bytes) -> None:
    bakes = [enqueue(system, tmp_path, slow_archive) for _ in range(3)]
    wait_until("an ffmpeg encoding the first bake", ffmpegs, timeout=60)
    took = stop_baker(system)
    wait_until("no ffmpeg left", lambda: not ffmpegs(), timeout=10)
    docs: list[dict[str, Any]] = [
        system.ask("store", StoreCall("get_doc", ("bakes", bake_id)), timeout=10)
        for bake_id in bakes]
    assert [doc["state"] for doc in docs] == ["failed"] * 3, docs
    assert all(doc["error"].startswith("interrupted") for doc in docs), docs
    assert not any((work_root(system.settings) / bake_id).exists() for bake_id in bakes)
    print(f"the Baker stopped mid-bake in {took:.2f} s")

