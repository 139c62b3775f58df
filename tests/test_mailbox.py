from __future__ import annotations

import asyncio
import threading
import time

import pytest
from prometheus_client import REGISTRY

from oven.actors.runtime import ActorContext, BoundedInbox, MailboxFull, ask_async
from oven.supervisor import Registry
from tests.actors_for_tests import Block, Echo, Worker


def _start(name: str, capacity: int) -> Worker:
    ctx = ActorContext(name=name, mailbox_capacity=capacity, lookup=Registry(),
                       on_exit=lambda *a: None)
    return Worker.start(ctx)._actor_weakref()  # type: ignore[return-value]


def test_pykka_uses_our_inbox_hook() -> None:
    # Pinned pykka: if _create_actor_inbox stops being called, the bound silently disappears.
    actor = _start("hook", 3)
    try:
        assert isinstance(actor.actor_inbox, BoundedInbox)
        assert actor.actor_inbox.capacity == 3
    finally:
        actor.actor_ref.stop(timeout=5)


def test_full_mailbox_answers_mailbox_full_without_blocking() -> None:
    release, started = threading.Event(), threading.Event()
    actor = _start("full", 2)
    ref = actor.actor_ref
    try:
        ref.tell(Block(release, started))
        assert started.wait(5)
        ref.tell(Echo(1))
        ref.tell(Echo(2))
        t0 = time.perf_counter()
        with pytest.raises(MailboxFull) as info:
            ref.tell(Echo(3))
        with pytest.raises(MailboxFull):
            ref.ask(Echo(4), block=False)
        elapsed = time.perf_counter() - t0
        # The bound is the claim (a full mailbox refuses, it never waits for room); 1 s is
        # generous for a loaded 2-core machine, and a waiting put would block until released.
        assert elapsed < 1, f"rejection took {elapsed:.3f} s"
        assert info.value.actor == "full"
        rejected = REGISTRY.get_sample_value("oven_mailbox_rejected_total", {"actor": "full"})
        assert rejected == 2
        assert REGISTRY.get_sample_value("oven_mailbox_depth", {"actor": "full"}) == 2
    finally:
        release.set()
        ref.stop(timeout=5)


def test_stop_on_a_full_mailbox_still_stops() -> None:
    release, started = threading.Event(), threading.Event()
    actor = _start("stopfull", 1)
    ref = actor.actor_ref
    ref.tell(Block(release, started))
    assert started.wait(5)
    ref.tell(Echo(1))
    with pytest.raises(MailboxFull):
        ref.tell(Echo(2))
    stopping = ref.stop(block=False)  # must not block nor raise although the mailbox is full
    release.set()
    assert stopping.get(timeout=5) is True
    assert not ref.is_alive()


async def test_async_bridge_awaits_replies_without_blocking_the_loop() -> None:
    release, started = threading.Event(), threading.Event()
    actor = _start("bridge", 10)
    ref = actor.actor_ref
    try:
        ref.tell(Block(release, started))
        assert started.wait(5)
        pending = asyncio.ensure_future(ask_async(ref, Echo("hi"), timeout=5))
        ticks = 0
        for _ in range(5):  # the loop keeps running while the actor is busy
            await asyncio.sleep(0.01)
            ticks += 1
        assert not pending.done() and ticks == 5
        release.set()
        assert await pending == "hi"
    finally:
        release.set()
        ref.stop(timeout=5)
