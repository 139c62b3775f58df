"""The actor base every oven actor stands on: bounded inbox, liveness ping, crash reporting."""

from __future__ import annotations

import concurrent.futures
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

import pykka
from pykka import ThreadingActor, ThreadingFuture

from oven.actors.runtime._mailbox import BoundedInbox, ControlMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ping(ControlMessage):
    """Liveness probe from the supervisor; answered with "pong" by the actor's own thread."""


@dataclass(frozen=True)
class Reconfigure(ControlMessage):
    """New settings after a reload; actors apply what they can change live."""

    settings: Any


@dataclass(frozen=True)
class InjectCrash(ControlMessage):
    """Fault injection (admin, off by default): crash the actor through its real crash path."""

    why: str = "injected crash"


class InjectedCrash(RuntimeError):
    pass


class Lookup(Protocol):
    """Resolves a sibling by name at send time (never a cached ref)."""

    def ref(self, name: str) -> pykka.ActorRef[Any]: ...


class ExitNotice(Protocol):
    def __call__(self, name: str, urn: str, reason: str, detail: str) -> None: ...


class ProcessGroups:
    """The OS process groups an actor owns, killable from any thread.

    The supervisor keeps this object, not the actor: a hung actor cannot be asked to clean up,
    and a Python thread cannot be killed, so its processes are killed from outside.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pgids: set[int] = set()
        self._providers: list[Callable[[], Iterable[int]]] = []
        self._killers: list[Callable[[], None]] = []

    def add_killer(self, killer: Callable[[], None]) -> None:
        """Register a thread-safe callable that kills processes not tracked by group here."""
        with self._lock:
            self._killers.append(killer)

    def add_provider(self, provider: Callable[[], Iterable[int]]) -> None:
        """Register a callable listing process groups that come and go (e.g. ffmpeg runs)."""
        with self._lock:
            self._providers.append(provider)

    def add(self, pgid: int) -> None:
        with self._lock:
            self._pgids.add(pgid)

    def discard(self, pgid: int) -> None:
        with self._lock:
            self._pgids.discard(pgid)

    def snapshot(self) -> set[int]:
        with self._lock:
            pgids, providers = set(self._pgids), list(self._providers)
        for provider in providers:
            try:
                pgids.update(provider())
            except Exception:
                log.exception("process group provider failed")
        return pgids

    def kill_all(self) -> int:
        """SIGKILL every owned group; returns how many groups were signalled."""
        killed = 0
        own = os.getpgrp()
        for pgid in self.snapshot():
            if pgid == own:  # never our own group: that would kill oven itself
                continue
            try:
                # The whole group: Chromium and ffmpeg fork helpers that a pid kill would orphan.
                os.killpg(pgid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
            except PermissionError:
                log.warning("cannot kill process group %d: permission denied", pgid)
            self.discard(pgid)
        with self._lock:
            killers = list(self._killers)
        for killer in killers:
            try:
                killer()
                killed += 1
            except Exception:
                log.exception("process killer failed")
        return killed


@dataclass
class ActorContext:
    """What a supervisor hands an actor it starts."""

    name: str
    mailbox_capacity: int | None
    lookup: Lookup
    on_exit: ExitNotice
    processes: ProcessGroups = field(default_factory=ProcessGroups)


class Deferred:
    """A reply that is not ready yet: a handler returns it and the asker is answered later.

    The actor thread hands the work to its loop and moves on to the next message; the asker's
    future resolves when `future` does (value or exception).
    """

    def __init__(self, future: concurrent.futures.Future[Any]) -> None:
        self.future = future


class OvenFuture(ThreadingFuture[Any]):
    """A Pykka future that can notify callbacks (so asyncio can await it without a thread) and
    that resolves Deferred replies when their work finishes.
    """

    def __init__(self) -> None:
        super().__init__()
        self._callbacks: list[Callable[[OvenFuture], None]] = []
        self._done = False

    def add_done_callback(self, callback: Callable[[OvenFuture], None]) -> None:
        with self._condition:
            if not self._done:
                self._callbacks.append(callback)
                return
        callback(self)

    def _fire(self) -> None:
        with self._condition:
            self._done = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                # One waiter's broken callback must not keep the reply from the others.
                log.exception("a reply callback failed")

    def set(self, value: Any | None = None) -> None:
        if isinstance(value, Deferred):
            value.future.add_done_callback(self._settle)
            return
        super().set(value)
        self._fire()

    def _settle(self, done: concurrent.futures.Future[Any]) -> None:
        if done.cancelled():
            error: BaseException = pykka.ActorDeadError("the actor cancelled this request")
        else:
            maybe = done.exception()
            if maybe is None:
                self.set(done.result())
                return
            error = maybe
        self.set_exception((type(error), error, error.__traceback__))

    def set_exception(self, exc_info: Any = None) -> None:
        if exc_info is None:
            exc_info = sys.exc_info()
        super().set_exception(exc_info)
        self._fire()


class OvenActor(ThreadingActor):
    """Base for every oven actor.

    - its inbox is bounded (capacity from config); a full one raises MailboxFull to the sender;
    - `Ping` is answered here, so a supervisor can tell a hung actor from a busy one;
    - a crash (exception in a told message) or a failing `setup()` is reported to the supervisor;
    - subclasses implement `setup()`, `teardown()` and `receive(message)`.
    """

    # Actor threads are daemons so a hung actor can never keep the process alive at exit;
    # orderly shutdown is the supervisor's job, not the interpreter's.
    use_daemon_thread = True
    # Temporary actors (one per session, a fresh name each) remove their per-actor series when
    # they end, or /metrics would grow by a few series per actor ever started. Actors that are
    # restarted under the same name keep theirs: a late teardown of a hung incarnation must not
    # remove its successor's.
    temporary = False

    def __init__(self, ctx: ActorContext) -> None:
        self.ctx = ctx
        self.name = ctx.name
        super().__init__()

    def _create_actor_inbox(self) -> BoundedInbox:  # type: ignore[override]
        # Pykka declares this hook static; it is called as self._create_actor_inbox() in
        # Actor.__init__, so an instance method can read this actor's configured capacity.
        return BoundedInbox(self.ctx.name, self.ctx.mailbox_capacity)

    @staticmethod
    def _create_future() -> OvenFuture:
        return OvenFuture()

    @property
    def inbox(self) -> BoundedInbox:
        inbox = self.actor_inbox
        assert isinstance(inbox, BoundedInbox)
        return inbox

    # -- lifecycle -----------------------------------------------------------------------------

    def setup(self) -> None:
        """Acquire resources; runs in the actor's thread before any message."""

    def teardown(self) -> None:
        """Release resources on an orderly stop; kill owned process groups here."""

    def receive(self, message: Any) -> Any:
        raise TypeError(f"{self.name} does not understand {type(message).__name__}")

    def reconfigure(self, settings: Any) -> None:
        """Apply live-tunable settings; the default ignores them."""

    def on_start(self) -> None:
        threading.current_thread().name = self.name
        try:
            self.setup()
        except Exception as exc:
            # Pykka stops an actor whose on_start fails without calling on_failure or on_stop,
            # so report it here or the supervisor would only learn of it from a ping.
            self.ctx.processes.kill_all()
            self._forget_series()
            self.ctx.on_exit(self.name, self.actor_urn, "start_failed", repr(exc))
            raise

    def on_stop(self) -> None:
        try:
            self.teardown()
        finally:
            self.ctx.processes.kill_all()
            self._forget_series()
            self.ctx.on_exit(self.name, self.actor_urn, "stopped", "")

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.teardown()
        except Exception:
            log.exception("%s: teardown after a crash failed", self.name)
        finally:
            self.ctx.processes.kill_all()
            self._forget_series()
            self.ctx.on_exit(self.name, self.actor_urn, "crash", repr(exception_value))

    def _forget_series(self) -> None:
        if self.temporary:
            self.inbox.forget_series()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Ping):
            return "pong"
        if isinstance(message, InjectCrash):
            raise InjectedCrash(message.why)
        if isinstance(message, Reconfigure):
            self.reconfigure(message.settings)
            return None
        return self.receive(message)
