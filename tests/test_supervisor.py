from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pykka
import pytest
from prometheus_client import REGISTRY

from oven.actors.runtime import ActorContext, AsyncActor
from oven.supervisor import (
    ActorUnavailable,
    ChildSpec,
    GetStatus,
    Registry,
    RestartPolicy,
    StartChildren,
    StartFailed,
    Strategy,
    Supervisor,
)
from tests.actors_for_tests import Block, Crash, Echo, FailingStart, Worker
from tests.waiting import wait_until

FAST = RestartPolicy(intensity=3, period_s=10, backoff_initial_s=0.05, backoff_max_s=0.2,
                     ping_interval_s=0.05, ping_timeout_s=0.5)


class Tree:
    def __init__(self, specs: list[ChildSpec], policy: RestartPolicy = FAST,
                 strategy: Strategy = Strategy.ONE_FOR_ONE) -> None:
        self.registry = Registry()
        self.escalated = threading.Event()
        self.why = ""
        ctx = ActorContext(name="test-root", mailbox_capacity=None, lookup=self.registry,
                           on_exit=lambda *a: None)
        self.ref = Supervisor.start(ctx, children=specs, registry=self.registry, policy=policy,
                                    strategy=strategy, on_escalate=self._escalate)

    def _escalate(self, why: str) -> None:
        self.why = why
        self.escalated.set()

    def wait_for_new(self, name: str, old_urn: str, timeout: float = 15) -> pykka.ActorRef[Any]:
        def restarted() -> pykka.ActorRef[Any] | None:
            try:
                ref = self.registry.ref(name)
            except ActorUnavailable:
                return None
            return ref if ref.actor_urn != old_urn else None

        # Polling the registry: there is no event for "restarted".
        ref: pykka.ActorRef[Any] = wait_until(f"{name} to be restarted", restarted,
                                              timeout=timeout, interval=0.005)
        return ref


def worker(name: str, **kw: Any) -> ChildSpec:
    return ChildSpec(id=name, start=Worker.start, mailbox_capacity=100, **kw)


@pytest.fixture
def tree() -> Iterator[Tree]:
    made: list[Tree] = []

    def make(*a: Any, **kw: Any) -> Tree:
        t = Tree(*a, **kw)
        made.append(t)
        return t

    yield make  # type: ignore[misc]
    for t in made:
        if t.ref.is_alive():
            t.ref.stop(timeout=10)


def restarts(actor: str, reason: str) -> float:
    return REGISTRY.get_sample_value("oven_actor_restarts_total",
                                     {"actor": actor, "reason": reason}) or 0.0


def test_children_start_in_order_and_answer_by_name(tree: Any) -> None:
    order: list[str] = []

    def starting(name: str) -> ChildSpec:
        def start(ctx: ActorContext) -> pykka.ActorRef[Any]:
            order.append(name)
            return Worker.start(ctx)
        return ChildSpec(id=name, start=start)

    t = tree([starting("a1"), starting("b1"), starting("c1")])
    t.ref.ask(StartChildren(), timeout=10)
    assert order == ["a1", "b1", "c1"]
    assert t.registry.ref("b1").ask(Echo(7), timeout=2) == 7
    states = {c["name"]: c["state"] for c in t.ref.ask(GetStatus(), timeout=2)}
    assert states == {"a1": "running", "b1": "running", "c1": "running"}


def test_a_crashing_child_is_restarted_and_its_pending_asks_fail_fast(tree: Any) -> None:
    t = tree([worker("crashy")])
    t.ref.ask(StartChildren(), timeout=10)
    ref = t.registry.ref("crashy")
    release, started = threading.Event(), threading.Event()
    before = restarts("crashy", "crash")
    ref.tell(Block(release, started, crash_after=True))
    assert started.wait(5)
    pending = ref.ask(Echo("never"), block=False)
    crashed_at = time.monotonic()
    release.set()
    with pytest.raises(pykka.ActorDeadError):
        pending.get(timeout=30)
    # Fast is the claim: the ask fails at the crash (milliseconds), not at its own 30 s
    # timeout; the restart follows the 0.2 s backoff, not the 10 s period. Both bounds are
    # generous for a loaded 2-core machine and still tell the two apart.
    assert time.monotonic() - crashed_at < 5
    new = t.wait_for_new("crashy", ref.actor_urn)
    restart_latency = time.monotonic() - crashed_at
    assert restart_latency < FAST.backoff_max_s * 1.2 + 5
    assert new.ask(Echo("back"), timeout=2) == "back"
    assert restarts("crashy", "crash") == before + 1


def test_a_hung_child_is_detected_by_pings_and_restarted(tree: Any) -> None:
    t = tree([worker("hangs")])
    t.ref.ask(StartChildren(), timeout=10)
    ref = t.registry.ref("hangs")
    release, started = threading.Event(), threading.Event()
    before = restarts("hangs", "hung")
    try:
        ref.tell(Block(release, started))
        assert started.wait(5)
        pending = ref.ask(Echo("stuck"), block=False)
        new = t.wait_for_new("hangs", ref.actor_urn)
        with pytest.raises(pykka.ActorDeadError):
            pending.get(timeout=1)
        assert new.ask(Echo("fresh"), timeout=2) == "fresh"
        assert restarts("hangs", "hung") == before + 1
    finally:
        release.set()  # let the abandoned thread finish


def test_exceeding_the_restart_intensity_escalates(tree: Any) -> None:
    t = tree([worker("first"), worker("doomed")])
    t.ref.ask(StartChildren(), timeout=10)
    for _ in range(FAST.intensity + 1):
        ref = t.registry.ref("doomed")
        ref.tell(Crash())
        if t.escalated.wait(0.01):
            break
        try:
            t.wait_for_new("doomed", ref.actor_urn)
        except AssertionError:
            break
    assert t.escalated.wait(5)
    assert "restarts within" in t.why
    # every child is stopped when the budget is spent
    with pytest.raises(ActorUnavailable):
        t.registry.ref("first")


def test_rest_for_one_restarts_the_failed_child_and_those_after_it(tree: Any) -> None:
    t = tree([worker("r1"), worker("r2"), worker("r3")], strategy=Strategy.REST_FOR_ONE)
    t.ref.ask(StartChildren(), timeout=10)
    r1, r2, r3 = (t.registry.ref(n) for n in ("r1", "r2", "r3"))
    r2.tell(Crash())
    t.wait_for_new("r2", r2.actor_urn)
    t.wait_for_new("r3", r3.actor_urn)
    assert t.registry.ref("r1").actor_urn == r1.actor_urn


def test_a_child_whose_setup_fails_fails_the_start(tree: Any) -> None:
    t = tree([ChildSpec(id="bad", start=FailingStart.start, start_timeout_s=2)])
    with pytest.raises(StartFailed, match="bad"):
        t.ref.ask(StartChildren(), timeout=10)


def test_temporary_children_are_not_restarted(tree: Any) -> None:
    from oven.supervisor import Restart

    t = tree([worker("once", restart=Restart.TEMPORARY)])
    t.ref.ask(StartChildren(), timeout=10)
    t.registry.ref("once").tell(Crash())
    # As in OTP, a temporary child is forgotten once it exits.
    wait_until("the temporary child to be forgotten",
               lambda: [c["name"] for c in t.ref.ask(GetStatus(), timeout=2)] == [],
               timeout=15, interval=0.01)
    with pytest.raises(ActorUnavailable):
        t.registry.ref("once")


def test_children_can_be_added_and_removed_while_running(tree: Any) -> None:
    from oven.supervisor import AddChild, RemoveChild, Restart

    t = tree([])
    t.ref.ask(StartChildren(), timeout=10)
    t.ref.ask(AddChild(worker("late", restart=Restart.TEMPORARY)), timeout=10)
    assert t.registry.ref("late").ask(Echo(1), timeout=2) == 1
    with pytest.raises(ValueError, match="already has a child"):
        t.ref.ask(AddChild(worker("late")), timeout=10)
    t.ref.ask(RemoveChild("late"), timeout=10)
    with pytest.raises(ActorUnavailable):
        t.registry.ref("late")


def test_a_hung_actors_processes_are_killed_when_it_is_replaced(tree: Any) -> None:
    import psutil

    from tests.actors_for_tests import ProcessOwner, SpawnAndHang

    t = tree([ChildSpec(id="owner", start=ProcessOwner.start)])
    t.ref.ask(StartChildren(), timeout=10)
    ref = t.registry.ref("owner")
    release, pids = threading.Event(), []
    try:
        ref.tell(SpawnAndHang(release, pids))
        t.wait_for_new("owner", ref.actor_urn)
        assert pids, "the child process was never started"

        def gone() -> bool:
            try:
                return psutil.Process(pids[0]).status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return True

        wait_until("the hung actor's child process to be killed", gone, timeout=15,
                   interval=0.01)
    finally:
        release.set()


def test_deferred_replies_free_the_actor_thread_and_carry_errors(tree: Any) -> None:
    from tests.actors_for_tests import Deferring, Later

    t = tree([ChildSpec(id="deferring", start=Deferring.start)])
    t.ref.ask(StartChildren(), timeout=10)
    ref = t.registry.ref("deferring")
    slow = ref.ask(Later("slow", 3), block=False)
    assert ref.ask(Later("fast", 0), timeout=10) == "fast"
    # Ordering, not a stopwatch: the fast reply came while the slow one was still pending.
    with pytest.raises(pykka.Timeout):
        slow.get(timeout=0)
    assert slow.get(timeout=10) == "slow"
    with pytest.raises(ValueError, match="bad"):
        ref.ask(Later(ValueError("bad"), 0), timeout=2)
    assert ref.ask(Later("still alive", 0), timeout=2) == "still alive"


def test_an_async_actor_with_a_blocked_loop_counts_as_hung(tree: Any) -> None:
    from tests.actors_for_tests import BlockLoop, LoopBlocker

    t = tree([ChildSpec(id="loopy", start=LoopBlocker.start)])
    t.ref.ask(StartChildren(), timeout=10)
    ref = t.registry.ref("loopy")
    release = threading.Event()
    try:
        ref.tell(BlockLoop(release))
        t.wait_for_new("loopy", ref.actor_urn)
        assert restarts("loopy", "hung") == 1
    finally:
        release.set()


# -- owned tasks: a long-lived task that dies is logged and acted on ------------------------------


@dataclass(frozen=True)
class BreakLoop:
    """Make the actor's owned loop raise on its next turn."""

    why: str


class LoopOwner(AsyncActor):
    """Runs one owned loop; `BreakLoop` makes it raise (a bug in a long-lived task)."""

    on_death = "crash"

    async def start_async(self) -> None:
        self.broken: asyncio.Queue[str] = asyncio.Queue()
        self.turns = 0
        self.own("ticker", self._tick, on_death=self.on_death)  # type: ignore[arg-type]

    async def _tick(self) -> None:
        self.turns += 1
        why = await self.broken.get()
        raise RuntimeError(why)

    def receive(self, message: Any) -> Any:
        match message:
            case BreakLoop(why=why):
                return self.defer(self._break(why))
            case "turns":
                return self.defer(self._turns())
        return super().receive(message)

    async def _break(self, why: str) -> None:
        self.broken.put_nowait(why)

    async def _turns(self) -> int:
        return self.turns


class RestartingLoopOwner(LoopOwner):
    on_death = "restart"


def test_an_owned_loop_that_raises_is_logged_with_its_name_and_the_actor_is_restarted(
    tree: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    t = tree([ChildSpec(id="owner", start=LoopOwner.start)])
    t.ref.ask(StartChildren(), timeout=10)
    ref = t.registry.ref("owner")
    with caplog.at_level(logging.ERROR):
        ref.ask(BreakLoop("the loop hit a bug"), timeout=2)
        new = t.wait_for_new("owner", ref.actor_urn)
    assert restarts("owner", "crash") == 1
    died = [r for r in caplog.records if r.levelno == logging.ERROR and "ticker" in r.getMessage()]
    assert died, [r.getMessage() for r in caplog.records]
    assert died[0].exc_info is not None and "the loop hit a bug" in str(died[0].exc_info[1])
    assert new.ask("turns", timeout=2) == 1  # the new incarnation runs its own loop


def test_an_owned_loop_may_instead_be_restarted_in_place_with_backoff(
    tree: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    t = tree([ChildSpec(id="restarting", start=RestartingLoopOwner.start)])
    t.ref.ask(StartChildren(), timeout=10)
    ref = t.registry.ref("restarting")
    with caplog.at_level(logging.ERROR):
        for turn in (2, 3):
            ref.ask(BreakLoop(f"bug {turn}"), timeout=2)
            # Polling the actor: the loop's restart has no event to wait on.
            wait_until(f"restart {turn - 1} of the loop",
                       lambda n=turn: ref.ask("turns", timeout=2) >= n, timeout=15,
                       interval=0.01)
    assert ref.is_alive() and t.registry.ref("restarting").actor_urn == ref.actor_urn
    assert restarts("restarting", "crash") == 0
    died = [r for r in caplog.records if "ticker" in r.getMessage() and r.exc_info]
    assert len(died) == 2
