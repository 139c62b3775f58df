"""Stopping a PtySession actor while a client reads: its loop ends with no task left, and no
process of the session is left running. A real actor (Pykka threads) around a real `cat`."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import time
from typing import Any

import pytest
from prometheus_client import REGISTRY

from oven.actors.pty_session import Attach, Next, PtySessionActor, SessionInfo, Write
from oven.actors.runtime import ActorContext, InjectCrash
from oven.pty import PtyProfile, PtySettings
from tests.waiting import wait_until

from .conftest import sessions_alive


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
    clients_before = REGISTRY.get_sample_value("oven_pty_clients") or 0.0
    client = ref.ask(Attach(controlling=True), timeout=10)
    ref.ask(Write(b"hello\n"), timeout=10)
    ref.ask(Next(client, 5.0), timeout=10)
    waiting = ref.ask(Next(client, 30.0), block=False)  # a reader waiting on the session
    # The publisher has published at least once: the attached client is in the gauge.
    wait_until("the session's figures to be published", lambda: (
        REGISTRY.get_sample_value("oven_pty_clients") or 0.0) > clients_before, timeout=10,
        interval=0.05)
    ref.stop(timeout=30)
    left = asyncio.all_tasks(actor.loop)
    assert not left, f"the stopped session actor left tasks behind: {left}"
    assert not actor.loop_thread.alive
    assert sessions_alive([pid]) == []
    waiting.get(timeout=10)  # answered (Closed, or the actor's cancellation), not left hanging


def mailbox_series(actor: str) -> list[str]:
    return [sample.name for family in REGISTRY.collect() for sample in family.samples
            if sample.labels.get("actor") == actor]


def start_session(name: str, command: list[str]) -> Any:
    ctx = ActorContext(name=name, mailbox_capacity=100, lookup=NoLookup(),
                       on_exit=lambda *args: None)
    return PtySessionActor.start(ctx, profile_name="p", profile=PtyProfile(command=command),
                                 cols=80, rows=24, settings=PtySettings())


@pytest.mark.parametrize("end", ["stop", "crash", "child exits"])
def test_a_session_actor_that_ends_takes_its_mailbox_series_with_it(end: str) -> None:
    name = f"pty-series-{end.replace(' ', '-')}"
    ref = start_session(name, ["sh", "-c", "sleep 0.5"] if end == "child exits" else ["cat"])
    assert "oven_mailbox_depth" in mailbox_series(name)
    if end == "stop":
        ref.stop(timeout=30)
    elif end == "crash":
        ref.tell(InjectCrash())
    until = time.monotonic() + 20
    while mailbox_series(name) and time.monotonic() < until:
        time.sleep(0.1)
    assert mailbox_series(name) == []
    assert not ref.is_alive()


def test_a_session_whose_program_does_not_exist_leaves_no_mailbox_series() -> None:
    ref = start_session("pty-series-missing", ["/nonexistent/no-such-program"])
    until = time.monotonic() + 20
    while (ref.is_alive() or mailbox_series("pty-series-missing")) and time.monotonic() < until:
        time.sleep(0.1)
    assert not ref.is_alive()
    assert mailbox_series("pty-series-missing") == []


def test_a_session_whose_reaper_dies_crashes_instead_of_living_on_unreaped() -> None:
    """The fault is injected (a close that raises once): a real close does not fail on demand."""
    exits: list[str] = []
    ctx = ActorContext(name="pty-reaper-dies", mailbox_capacity=100, lookup=NoLookup(),
                       on_exit=lambda name, urn, reason, detail: exits.append(reason))
    ref = PtySessionActor.start(ctx, profile_name="cat", profile=PtyProfile(command=["cat"]),
                                cols=80, rows=24, settings=PtySettings())
    ref.ask(SessionInfo(), timeout=10)  # started
    actor = next(o for o in gc.get_objects()
                 if isinstance(o, PtySessionActor) and o.actor_urn == ref.actor_urn)
    session = actor.session
    assert session is not None and session.pid is not None
    real_close = session.close
    failed = []

    async def close_failing_once() -> None:
        if not failed:
            failed.append(True)
            raise RuntimeError("injected: close failed")
        await real_close()

    session.close = close_failing_once  # type: ignore[method-assign]
    os.kill(session.pid, signal.SIGKILL)  # the child exits: the reaper closes the session
    until = time.monotonic() + 15
    while ref.is_alive() and time.monotonic() < until:
        time.sleep(0.1)
    assert failed, "the reaper never closed the session"
    assert not ref.is_alive(), "the session lives on with a dead reaper"
    assert exits == ["crash"], exits
    assert sessions_alive([session.pid]) == []
