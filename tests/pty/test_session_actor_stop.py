"""Stopping a PtySession actor while a client reads: its loop ends with no task left, and no
process of the session is left running. A real actor (Pykka threads) around a real `cat`."""

from __future__ import annotations

import asyncio
import gc
import time

from conftest import sessions_alive

from oven.actors._base import ActorContext
from oven.actors._pty_session import Attach, Next, PtySessionActor, SessionInfo, Write
from oven.pty import PtyProfile, PtySettings


class NoLookup:
    def ref(self, name: str) -> object:
        raise LookupError(name)


def test_stopping_a_session_actor_mid_read_leaves_no_task_and_no_process() -> None:
    ctx = ActorContext(name="pty-stop-test", mailbox_capacity=100, lookup=NoLookup(),
                       on_exit=lambda *args: None)
    ref = PtySessionActor.start(ctx, profile_name="cat", profile=PtyProfile(command=["cat"]),
                                cols=80, rows=24, settings=PtySettings())
    actor = next(o for o in gc.get_objects()
                 if isinstance(o, PtySessionActor) and o.actor_urn == ref.actor_urn)
    pid = ref.ask(SessionInfo(), timeout=10)["pid"]
    client = ref.ask(Attach(controlling=True), timeout=10)
    ref.ask(Write(b"hello\n"), timeout=10)
    ref.ask(Next(client, 5.0), timeout=10)
    waiting = ref.ask(Next(client, 30.0), block=False)  # a reader waiting on the session
    time.sleep(1.5)  # the publisher has published at least once
    ref.stop(timeout=30)
    left = asyncio.all_tasks(actor.loop)
    assert not left, f"the stopped session actor left tasks behind: {left}"
    assert not actor.loop_thread.alive
    assert sessions_alive([pid]) == []
    waiting.get(timeout=10)  # answered (Closed, or the actor's cancellation), not left hanging
