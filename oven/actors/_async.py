"""AsyncActor: an actor whose work runs as coroutines on a private asyncio loop thread."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from oven.actors._base import ActorContext, Deferred, OvenActor, Ping
from oven.actors._bridge import LoopThread

log = logging.getLogger(__name__)


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

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.loop_thread.loop

    def setup(self) -> None:
        self.loop_thread.start()
        # Blocking here is deliberate: the supervisor's start ping waits behind setup, so a
        # child is only "running" once its async resources exist.
        self.loop_thread.run(self.start_async(), timeout=self.start_timeout_s)

    def teardown(self) -> None:
        if not self.loop_thread.alive:
            return
        try:
            self.loop_thread.run(self.stop_async(), timeout=self.stop_timeout_s)
        except Exception:
            log.exception("%s: async shutdown failed", self.name)
        finally:
            self.loop_thread.stop()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Ping) and self.loop_thread.alive:
            # Answered from the loop, not the actor thread: an actor whose loop is blocked is
            # hung even though its thread still reads messages.
            return self.defer(_pong())
        return super().on_receive(message)

    def defer(self, coro: Coroutine[Any, Any, Any]) -> Deferred:
        return Deferred(self.loop_thread.submit(coro))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` on the loop with nobody waiting; its failure is logged, never lost."""
        future = self.loop_thread.submit(coro)

        def report(done: Any) -> None:
            if not done.cancelled() and done.exception() is not None:
                log.error("%s: background task failed", self.name, exc_info=done.exception())

        future.add_done_callback(report)

    async def start_async(self) -> None:
        """Open async resources on the actor's loop."""

    async def stop_async(self) -> None:
        """Close async resources on the actor's loop."""


async def _pong() -> str:
    return "pong"
