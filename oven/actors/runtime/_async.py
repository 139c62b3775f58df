"""AsyncActor: an actor whose work runs as coroutines on a private asyncio loop thread.

Long-lived tasks (watch loops, sweepers, a recycle in progress) are *owned*: started with
`own(name, factory)`, they are cancelled at stop, and an unexpected death (any exception but
cancellation) is logged at ERROR with the task's name and traceback, then acted on: by default
the actor crashes into its supervisor (a dead loop is a silent outage otherwise), or, with
`on_death="restart"`, the loop is started again after an exponential, jittered backoff.
Short fire-and-forget work goes through `spawn(coro)`, which logs a failure and moves on; it is
owned too, in that stop cancels it with the loops: nothing an actor started outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

import pykka

from oven.actors.runtime._base import ActorContext, Deferred, OvenActor, Ping
from oven.actors.runtime._bridge import LoopThread
from oven.actors.runtime._mailbox import ControlMessage

log = logging.getLogger(__name__)

OnDeath = Literal["crash", "restart"]
TaskFactory = Callable[[], Coroutine[Any, Any, None]]


class OwnedTaskDied(RuntimeError):
    """An owned task raised: the actor crashes with this so its supervisor restarts it."""


@dataclass(frozen=True)
class _TaskDied(ControlMessage):
    """Told by an actor to itself from its loop: crash through the real crash path.

    A control message so a full mailbox cannot swallow it.
    """

    task: str
    error: BaseException


@dataclass
class _Owned:
    name: str
    factory: TaskFactory
    on_death: OnDeath
    backoff_initial_s: float
    backoff_max_s: float
    task: asyncio.Task[None] | None = None
    started_at: float = 0.0
    deaths: int = 0  # in a row, for the backoff of on_death="restart"
    pending: asyncio.TimerHandle | None = field(default=None, repr=False)


class AsyncActor(OvenActor):
    """The mailbox and supervision of an actor, with an asyncio room inside.

    Messages arrive on the actor thread; handlers return `self.defer(coro)` so the work runs on
    the actor's own loop and the asker is answered when it finishes. All async state is touched
    only from that loop, so it needs no locks. Subclasses implement `start_async`/`stop_async`.
    """

    start_timeout_s: float = 30.0
    stop_timeout_s: float = 10.0

    def __init__(self, ctx: ActorContext) -> None:
        super().__init__(ctx)
        self.loop_thread = LoopThread(ctx.name)
        self._owned: dict[str, _Owned] = {}
        self._spawned: set[asyncio.Task[Any]] = set()
        self._closing = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.loop_thread.loop

    @property
    def closing(self) -> bool:
        """True once the actor has begun to stop: start no new work that outlives a message."""
        return self._closing

    def setup(self) -> None:
        self.loop_thread.start()
        try:
            # Blocking here is deliberate: the supervisor's start ping waits behind setup, so a
            # child is only "running" once its async resources exist.
            self.loop_thread.run(self.start_async(), timeout=self.start_timeout_s)
        except BaseException:
            # Pykka calls no teardown after a failed start: release what started, or every
            # failed restart would leave a loop thread (and its tasks) behind.
            self._shut_down()
            raise

    def teardown(self) -> None:
        self._shut_down()

    def _shut_down(self) -> None:
        if not self.loop_thread.alive:
            return
        try:
            self.loop_thread.run(self._stop_all(), timeout=self.stop_timeout_s)
        except Exception:
            log.exception("%s: async shutdown failed", self.name)
        finally:
            self.loop_thread.stop()

    async def _stop_all(self) -> None:
        # Owned loops and spawned work first: they must not touch resources that stop_async
        # is closing.
        self._closing = True
        tasks = list(self._spawned)
        for spawned in tasks:
            spawned.cancel()
        for owned in self._owned.values():
            if owned.pending is not None:
                owned.pending.cancel()
            if owned.task is not None and not owned.task.done():
                owned.task.cancel()
                tasks.append(owned.task)
        await asyncio.gather(*tasks, return_exceptions=True)
        self._owned.clear()
        self._spawned.clear()
        await self.stop_async()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Ping) and self.loop_thread.alive:
            # Answered from the loop, not the actor thread: an actor whose loop is blocked is
            # hung even though its thread still reads messages.
            return self.defer(_pong())
        if isinstance(message, _TaskDied):
            raise OwnedTaskDied(
                f"owned task {message.task!r} died: {message.error!r}") from message.error
        return super().on_receive(message)

    def defer(self, coro: Coroutine[Any, Any, Any]) -> Deferred:
        return Deferred(self.loop_thread.submit(coro))

    # -- tasks ----------------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> None:
        """Run short work on the loop with nobody waiting; its failure is logged, never lost.

        Callable from any thread. Stop cancels it with the owned tasks. For work that lives as
        long as the actor, use `own`.
        """
        label = str(name or getattr(coro, "__qualname__", "task"))
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is self.loop:
            self.spawn_task(coro, name=label)
        else:
            self.loop.call_soon_threadsafe(lambda: self.spawn_task(coro, name=label))

    def spawn_task(self, coro: Coroutine[Any, Any, Any], *,
                   name: str) -> asyncio.Task[Any] | None:
        """`spawn`, called on the actor's loop, answering the task (None once stopping)."""
        label = name
        if self._closing:
            coro.close()  # never started: nothing to cancel, and no "never awaited" warning
            log.info("%s: stopping, so %s was not started", self.name, label)
            return None
        task = self.loop.create_task(coro, name=f"{self.name}:{label}")
        self._spawned.add(task)

        def report(done: asyncio.Task[Any]) -> None:
            self._spawned.discard(done)
            if not done.cancelled() and done.exception() is not None:
                log.error("%s: background task %s failed", self.name, label,
                          exc_info=done.exception())

        task.add_done_callback(report)
        return task

    def own(self, name: str, factory: TaskFactory, *, on_death: OnDeath = "crash",
            backoff_initial_s: float = 0.5, backoff_max_s: float = 30.0) -> asyncio.Task[None]:
        """Start the long-lived task `name` (running `factory()`) and answer for its death.

        Call on the actor's loop (start_async, a deferred handler, another owned task). A task
        that returns is simply forgotten; cancelled, likewise (stop cancels every owned task).
        One that raises is logged at ERROR with its name and traceback, then:
        - `on_death="crash"`: the actor crashes into its supervisor (restart, escalation);
        - `on_death="restart"`: `factory()` runs again after a backoff doubling from
          `backoff_initial_s` to `backoff_max_s` (±20 % jitter), reset once a run has lasted
          `backoff_max_s`.
        Owning a name whose task is still alive (or waiting to restart) is an error.
        """
        existing = self._owned.get(name)
        if existing is not None and existing.task is not None and existing.task.done():
            self._owned_done(existing, existing.task)  # done, but its callback has not run yet
            existing = self._owned.get(name)
        if existing is not None:
            raise ValueError(f"{self.name} already runs an owned task named {name!r}")
        if self._closing:
            raise RuntimeError(f"{self.name} is stopping: cannot start owned task {name!r}")
        owned = _Owned(name, factory, on_death, backoff_initial_s, backoff_max_s)
        self._owned[name] = owned
        return self._start_owned(owned)

    def owned(self, name: str) -> asyncio.Task[None] | None:
        """The live task owned under `name`, if any (call on the actor's loop)."""
        owned = self._owned.get(name)
        if owned is None or owned.task is None or owned.task.done():
            return None
        return owned.task

    def _start_owned(self, owned: _Owned) -> asyncio.Task[None]:
        owned.pending = None
        owned.started_at = time.monotonic()
        task = asyncio.get_running_loop().create_task(owned.factory(),
                                                      name=f"{self.name}:{owned.name}")
        owned.task = task
        task.add_done_callback(lambda done: self._owned_done(owned, done))
        return task

    def _owned_done(self, owned: _Owned, task: asyncio.Task[None]) -> None:
        if self._owned.get(owned.name) is not owned or owned.task is not task:
            return  # handled already, or replaced meanwhile
        owned.task = None
        error = None if task.cancelled() else task.exception()
        if error is None:
            del self._owned[owned.name]
            return
        log.error("%s: owned task %r died", self.name, owned.name, exc_info=error,
                  extra={"actor": self.name, "task": owned.name})
        if self._closing:
            del self._owned[owned.name]
            return
        if owned.on_death == "restart":
            if time.monotonic() - owned.started_at >= owned.backoff_max_s:
                owned.deaths = 0  # it ran well for a while: this is a new streak
            owned.deaths += 1
            delay = min(owned.backoff_max_s, owned.backoff_initial_s * 2 ** (owned.deaths - 1))
            delay *= random.uniform(0.8, 1.2)
            log.warning("%s: restarting owned task %r in %.2f s (death %d in a row)",
                        self.name, owned.name, delay, owned.deaths)
            owned.pending = asyncio.get_running_loop().call_later(
                delay, self._start_owned, owned)
            return
        del self._owned[owned.name]
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(_TaskDied(owned.name, error))

    async def start_async(self) -> None:
        """Open async resources on the actor's loop."""

    async def stop_async(self) -> None:
        """Close async resources on the actor's loop (owned tasks are already cancelled)."""


async def _pong() -> str:
    return "pong"
