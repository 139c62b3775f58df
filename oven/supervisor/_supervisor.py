"""A supervisor with OTP semantics, itself an actor so death notices are ordinary messages."""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pykka

from oven import metrics
from oven.actors.runtime import ActorContext, OvenActor, OvenFuture, Ping, ProcessGroups
from oven.supervisor._messages import (
    AddChild,
    ChildExited,
    ChildStatus,
    GetStatus,
    RemoveChild,
    RestartChild,
    SetPolicy,
    StartChildren,
    StopChildren,
    SupervisorState,
    Tick,
)
from oven.supervisor._spec import (
    ChildSpec,
    Registry,
    Restart,
    RestartPolicy,
    StartFailed,
    Strategy,
)

log = logging.getLogger(__name__)


# -- state -----------------------------------------------------------------------------------


@dataclass
class _Child:
    spec: ChildSpec
    status: ChildStatus = ChildStatus.STOPPED
    ref: pykka.ActorRef[Any] | None = None
    processes: ProcessGroups = field(default_factory=ProcessGroups)
    restarts: int = 0
    last_reason: str = ""
    last_detail: str = ""
    started_at: float = 0.0
    ping: tuple[OvenFuture, float] | None = None
    window: collections.deque[float] = field(default_factory=collections.deque)


class Supervisor(OvenActor):
    """Starts children in order, restarts them by policy, escalates when the budget is spent.

    Crashes arrive as ChildExited (from the child's on_failure / failing setup); hangs are found
    by pings that go unanswered for `ping_timeout_s`. Restarts wait an exponential backoff with
    jitter; more than `intensity` restarts within `period_s` stops every child in reverse and
    escalates: to `on_escalate` at the root, to the parent supervisor otherwise.
    """

    def __init__(
        self,
        ctx: ActorContext,
        *,
        children: list[ChildSpec],
        registry: Registry,
        policy: RestartPolicy,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        on_escalate: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(ctx)
        self.registry = registry
        self.policy = policy
        self.strategy = strategy
        self.on_escalate = on_escalate
        self.state = SupervisorState.STARTING
        self.children: dict[str, _Child] = {spec.id: _Child(spec) for spec in children}
        self._window: collections.deque[float] = collections.deque()
        self._ticker_stop = threading.Event()
        self._timers: list[threading.Timer] = []

    # -- lifecycle ------------------------------------------------------------------------------

    def setup(self) -> None:
        threading.Thread(target=self._tick_loop, name=f"{self.name}-ticker", daemon=True).start()

    def _tick_loop(self) -> None:
        # A thread of its own: timers must not depend on the supervisor's inbox being idle.
        while not self._ticker_stop.wait(self.policy.ping_interval_s):
            try:
                self.actor_ref.tell(Tick())
            except pykka.ActorDeadError:
                return

    def teardown(self) -> None:
        self._ticker_stop.set()
        for timer in self._timers:
            timer.cancel()
        self._stop_children(list(self.children))
        if self.state is not SupervisorState.ESCALATED:
            self.state = SupervisorState.STOPPED

    def receive(self, message: Any) -> Any:
        match message:
            case StartChildren():
                return self._start_all()
            case StopChildren():
                self._stop_children(list(self.children))
                return None
            case ChildExited():
                self._child_exited(message)
            case RestartChild(name=name):
                self._restart(name)
            case Tick():
                self._tick()
            case GetStatus():
                return self._status()
            case SetPolicy(policy=policy):
                self.policy = policy
            case AddChild(spec=spec):
                if spec.id in self.children:
                    raise ValueError(f"{self.name} already has a child named {spec.id!r}")
                self.children[spec.id] = _Child(spec)
                try:
                    self._start_child(spec.id)
                except StartFailed:
                    self._forget(spec.id)
                    raise
            case RemoveChild(name=name):
                child = self.children.get(name)
                if child is not None:
                    if child.ref is not None and child.status is ChildStatus.RUNNING:
                        self._stop_child(child)
                    self._forget(name)
            case _:
                return super().receive(message)
        return None

    # -- starting and stopping ------------------------------------------------------------------

    def _start_all(self) -> None:
        for name in self.children:
            self._start_child(name)  # raises StartFailed: the caller decides what that means
        self.state = SupervisorState.RUNNING
        metrics.ACTOR_UP.labels(actor=self.name).set(1)

    def _start_child(self, name: str) -> None:
        child = self.children[name]
        spec = child.spec
        child.status = ChildStatus.STARTING
        child.processes = ProcessGroups()
        ctx = ActorContext(
            name=spec.id,
            mailbox_capacity=spec.mailbox_capacity,
            lookup=self.registry,
            on_exit=self._notice,
            processes=child.processes,
        )
        try:
            ref = spec.start(ctx)
            # The first ping queues behind setup(): its answer confirms the child is serving.
            ref.ask(Ping(), timeout=spec.start_timeout_s)
        except Exception as exc:
            child.status = ChildStatus.FAILED
            child.last_reason, child.last_detail = "start_failed", repr(exc)
            child.processes.kill_all()
            self.registry.mark_down(name, f"failed to start: {exc!r}")
            metrics.ACTOR_UP.labels(actor=name).set(0)
            raise StartFailed(name, repr(exc)) from exc
        child.ref, child.status, child.started_at, child.ping = (
            ref,
            ChildStatus.RUNNING,
            time.time(),
            None,
        )
        self.registry.put(name, ref)
        metrics.ACTOR_UP.labels(actor=name).set(1)
        log.info("%s: started %s", self.name, name)

    def _stop_children(self, names: list[str]) -> None:
        for name in reversed(names):
            child = self.children[name]
            if child.ref is not None and child.status in (
                ChildStatus.RUNNING,
                ChildStatus.STARTING,
            ):
                self._stop_child(child)

    def _stop_child(self, child: _Child) -> None:
        name, ref = child.spec.id, child.ref
        assert ref is not None
        child.status = ChildStatus.STOPPED
        self.registry.mark_down(name, "stopped")
        metrics.ACTOR_UP.labels(actor=name).set(0)
        try:
            ref.stop(timeout=child.spec.shutdown_timeout_s)
        except pykka.Timeout:
            log.warning(
                "%s: %s did not stop within %.1f s; killing its processes",
                self.name,
                name,
                child.spec.shutdown_timeout_s,
            )
            self._abandon(child)
        except pykka.ActorDeadError:
            pass
        child.processes.kill_all()
        child.ref = None

    def _abandon(self, child: _Child) -> None:
        """Give up on a child that will not answer: kill its processes, fail its pending asks.

        A Python thread cannot be killed; it is flagged stopped so it exits if it ever returns.
        """
        child.processes.kill_all()
        ref = child.ref
        if ref is None:
            return
        ref.actor_stopped.set()
        pykka.ActorRegistry.unregister(ref)
        inbox = ref.actor_inbox
        while not inbox.empty():
            envelope = inbox.get()
            if envelope.reply_to is not None:
                error = pykka.ActorDeadError(f"{child.spec.id} was abandoned: {child.last_reason}")
                envelope.reply_to.set_exception((type(error), error, None))

    # -- failures -------------------------------------------------------------------------------

    def _notice(self, name: str, urn: str, reason: str, detail: str) -> None:
        # Called in the dying child's thread; hand it to our own thread as a message.
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(ChildExited(name, urn, reason, detail))

    def _child_exited(self, notice: ChildExited) -> None:
        child = self.children.get(notice.name)
        if child is None or child.ref is None or child.ref.actor_urn != notice.urn:
            return  # an old incarnation, or a child we stopped ourselves
        if child.status is not ChildStatus.RUNNING:
            return
        self._failed(child, notice.reason, notice.detail)

    def _failed(self, child: _Child, reason: str, detail: str) -> None:
        name = child.spec.id
        child.last_reason, child.last_detail = reason, detail
        metrics.ACTOR_UP.labels(actor=name).set(0)
        abnormal = reason != "stopped"
        wants_restart = child.spec.restart is Restart.PERMANENT or (
            child.spec.restart is Restart.TRANSIENT and abnormal
        )
        log_at = logging.WARNING if abnormal else logging.INFO
        log.log(log_at, "%s: %s exited (%s) %s", self.name, name, reason, detail)
        if not wants_restart:
            child.status, child.ref = ChildStatus.STOPPED, None
            if child.spec.restart is Restart.TEMPORARY:
                self._forget(name)  # a temporary child's name is not kept once it is gone
            else:
                self.registry.mark_down(name, f"exited ({reason})")
            return
        child.status = ChildStatus.RESTARTING
        self.registry.mark_down(name, f"restarting after {reason}: {detail}")
        metrics.ACTOR_RESTARTS.labels(actor=name, reason=reason).inc()
        if self.strategy is Strategy.REST_FOR_ONE:
            later = list(self.children)[list(self.children).index(name) + 1 :]
            for other in reversed(later):
                sibling = self.children[other]
                if sibling.status is ChildStatus.RUNNING:
                    self._stop_child(sibling)
                    sibling.status = ChildStatus.RESTARTING
        self._schedule_restart(child)

    def _forget(self, name: str) -> None:
        self.children.pop(name, None)
        self.registry.forget(name)
        with contextlib.suppress(KeyError):  # no series yet for a child that never started
            metrics.ACTOR_UP.remove(name)

    def _schedule_restart(self, child: _Child) -> None:
        now = time.monotonic()
        for window in (self._window, child.window):
            window.append(now)
            while window and window[0] < now - self.policy.period_s:
                window.popleft()
        if len(self._window) > self.policy.intensity:
            self._escalate(
                f"{len(self._window)} restarts within {self.policy.period_s:g} s "
                f"(intensity {self.policy.intensity}); last: {child.spec.id} {child.last_reason}"
            )
            return
        delay = self.policy.backoff(len(child.window))
        child.restarts += 1
        log.info(
            "%s: restarting %s in %.2f s (restart %d)",
            self.name,
            child.spec.id,
            delay,
            child.restarts,
        )
        timer = threading.Timer(delay, self._tell_restart, args=(child.spec.id,))
        timer.daemon = True
        self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def _tell_restart(self, name: str) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(RestartChild(name))

    def _restart(self, name: str) -> None:
        if self.state is not SupervisorState.RUNNING:
            return
        names = list(self.children)
        todo = [name]
        if self.strategy is Strategy.REST_FOR_ONE:
            todo += [
                n
                for n in names[names.index(name) + 1 :]
                if self.children[n].status is ChildStatus.RESTARTING
            ]
        for each in todo:
            try:
                self._start_child(each)
            except StartFailed as exc:
                child = self.children[each]
                log.warning("%s: restart of %s failed: %s", self.name, each, exc.reason)
                child.status = ChildStatus.RESTARTING
                self._schedule_restart(child)
                return

    def _escalate(self, why: str) -> None:
        log.error("%s: restart budget exceeded, stopping all children: %s", self.name, why)
        metrics.SUPERVISOR_ESCALATIONS.labels(supervisor=self.name).inc()
        self.state = SupervisorState.ESCALATED
        for child in self.children.values():
            if child.status is ChildStatus.RESTARTING:
                child.status = ChildStatus.FAILED
        self._stop_children(list(self.children))
        metrics.ACTOR_UP.labels(actor=self.name).set(0)
        if self.on_escalate is not None:
            self.on_escalate(why)
        else:
            self.ctx.on_exit(self.name, self.actor_urn, "escalated", why)

    # -- liveness -------------------------------------------------------------------------------

    def _tick(self) -> None:
        now = time.monotonic()
        for child in list(self.children.values()):
            if child.status is not ChildStatus.RUNNING or child.ref is None:
                continue
            if child.ping is None:
                try:
                    future = child.ref.ask(Ping(), block=False)
                except pykka.ActorDeadError:
                    self._failed(child, "crash", "actor found dead")
                    continue
                assert isinstance(future, OvenFuture)
                child.ping = (future, now)
                continue
            future, sent = child.ping
            try:
                future.get(timeout=0)
                child.ping = None
                metrics.ACTOR_UP.labels(actor=child.spec.id).set(1)
            except pykka.Timeout:
                if now - sent > self.policy.ping_timeout_s:
                    detail = f"no answer to a ping for {now - sent:.1f} s"
                    child.last_reason = "hung"
                    self._abandon(child)
                    child.ping = None
                    self._failed(child, "hung", detail)
            except Exception as exc:
                child.ping = None
                self._failed(child, "crash", f"ping failed: {exc!r}")

    def _status(self) -> list[dict[str, Any]]:
        out = []
        for name, child in self.children.items():
            inbox = child.ref.actor_inbox if child.ref is not None else None
            out.append(
                {
                    "name": name,
                    "state": child.status.value,
                    "restarts": child.restarts,
                    "last_exit": child.last_reason or None,
                    "last_exit_detail": child.last_detail or None,
                    "up_since": child.started_at if child.status is ChildStatus.RUNNING else None,
                    "mailbox_depth": inbox.qsize() if inbox is not None else 0,  # type: ignore[attr-defined]
                    "mailbox_capacity": child.spec.mailbox_capacity,
                }
            )
        return out
