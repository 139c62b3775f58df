"""Bridges between Pykka's threads and asyncio, in both directions."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import pykka

from oven.actors.runtime._base import OvenFuture

log = logging.getLogger(__name__)

T = TypeVar("T")


class AskTimeout(TimeoutError):
    def __init__(self, actor: str, message: Any, timeout: float) -> None:
        super().__init__(f"{actor} did not answer {type(message).__name__} within {timeout:g} s")
        self.actor = actor


async def ask_async(ref: pykka.ActorRef[Any], message: Any, *, timeout: float) -> Any:
    """Ask an actor from asyncio code without blocking the event loop.

    Raises MailboxFull at once when the actor's mailbox is full, AskTimeout after `timeout`.
    """
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    future = ref.ask(message, block=False)  # MailboxFull is raised here, in our thread

    def resolve() -> None:
        if not waiter.done():
            waiter.set_result(None)

    def wake(_: OvenFuture) -> None:
        # Runs in the actor's thread; asyncio futures may only be touched from their loop.
        try:
            loop.call_soon_threadsafe(resolve)
        except RuntimeError:
            # The asker's loop has closed (its actor stopped first, at shutdown): nobody is
            # left to wake, and the reply is dropped with it.
            if not loop.is_closed():
                raise

    if isinstance(future, OvenFuture):
        future.add_done_callback(wake)
    else:  # an actor not built on OvenActor: fall back to a worker thread
        waiter = asyncio.ensure_future(asyncio.to_thread(future.get, timeout=timeout))
    try:
        async with asyncio.timeout(timeout):
            await waiter
    except TimeoutError:
        raise AskTimeout(ref.actor_class.__name__, message, timeout) from None
    # The reply is ready: get() returns (or raises the actor's exception) without waiting.
    return future.get(timeout=0)


class LoopThread:
    """A private asyncio loop on its own thread, owned by one actor.

    Async libraries (Playwright, aioboto3, pymongo's async client) bind their objects to the loop
    that made them; the owning actor submits coroutines here and is told when they finish, so its
    own thread never blocks on I/O.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=f"{name}-loop", daemon=True)
        self._started = threading.Event()

    def start(self) -> LoopThread:
        self._thread.start()
        self._started.wait(timeout=5)
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._started.set)
        self.loop.run_forever()
        # Give cancelled tasks a chance to run their finally blocks before the loop closes.
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule `coro` on the loop from any thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], *, timeout: float) -> T:
        """Run `coro` and wait for it from another thread, at most `timeout` seconds."""
        future = self.submit(coro)
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"{self.name}: operation exceeded {timeout:g} s") from None

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, *, timeout: float = 5.0) -> None:
        if not self._thread.is_alive():
            return
        # call_soon_threadsafe: loop.stop() must run on the loop's own thread.
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("%s: loop thread did not stop within %.1f s", self.name, timeout)
