"""Child specs, restart policies and the registry siblings are looked up in."""

from __future__ import annotations

import enum
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from oven.actors.runtime import ActorContext
from oven.errors import Refusal


class Restart(enum.StrEnum):
    PERMANENT = "permanent"  # always restarted
    TRANSIENT = "transient"  # restarted only after an abnormal exit
    TEMPORARY = "temporary"  # never restarted


class Strategy(enum.StrEnum):
    ONE_FOR_ONE = "one_for_one"  # restart only the child that failed
    REST_FOR_ONE = "rest_for_one"  # restart it and every child started after it


@dataclass(frozen=True)
class ChildSpec:
    id: str
    start: Callable[[ActorContext], pykka.ActorRef[Any]]
    restart: Restart = Restart.PERMANENT
    shutdown_timeout_s: float = 5.0
    start_timeout_s: float = 10.0
    mailbox_capacity: int | None = 1000


@dataclass(frozen=True)
class RestartPolicy:
    """OTP's intensity/period plus backoff between restarts and liveness pings."""

    intensity: int = 5
    period_s: float = 60.0
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 5.0
    jitter: float = 0.2
    ping_interval_s: float = 2.0
    ping_timeout_s: float = 10.0

    def backoff(self, attempt: int) -> float:
        """Delay before restart number `attempt` (1-based) within the window, with jitter."""
        base = min(self.backoff_max_s, self.backoff_initial_s * 2 ** max(0, attempt - 1))
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)


class ActorUnavailable(Refusal):
    """The named actor is not running right now (restarting, failed or never started)."""

    status = 503

    def __init__(self, name: str, reason: str, retry_after_s: float = 1.0) -> None:
        super().__init__(f"{name} is not available: {reason}", retry_after_s=retry_after_s)
        self.name = name
        self.reason = reason


class StartFailed(Exception):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name} failed to start: {reason}")
        self.name = name
        self.reason = reason


class Registry:
    """Name → current ref, written by supervisors, read by everyone at send time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refs: dict[str, pykka.ActorRef[Any]] = {}
        self._down: dict[str, str] = {}

    def put(self, name: str, ref: pykka.ActorRef[Any]) -> None:
        with self._lock:
            self._refs[name] = ref
            self._down.pop(name, None)

    def mark_down(self, name: str, reason: str) -> None:
        with self._lock:
            self._refs.pop(name, None)
            self._down[name] = reason

    def forget(self, name: str) -> None:
        with self._lock:
            self._refs.pop(name, None)
            self._down.pop(name, None)

    def ref(self, name: str) -> pykka.ActorRef[Any]:
        with self._lock:
            ref = self._refs.get(name)
            reason = self._down.get(name, "not started")
        if ref is None or not ref.is_alive():
            raise ActorUnavailable(name, reason)
        return ref

    def names(self) -> list[str]:
        with self._lock:
            return list(self._refs) + [n for n in self._down if n not in self._refs]
