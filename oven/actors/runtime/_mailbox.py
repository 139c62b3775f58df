"""A bounded actor inbox: a full mailbox is an answer (MailboxFull), never a wait."""

from __future__ import annotations

import collections
import contextlib
import threading
from typing import Any

from pykka import messages

from oven import metrics
from oven.errors import Refusal


class MailboxFull(Refusal):
    """The receiving actor's mailbox is at capacity; the sender should back off and retry."""

    status = 429

    def __init__(self, actor: str, capacity: int, retry_after_s: float = 1.0) -> None:
        super().__init__(f"{actor} mailbox is full ({capacity} messages); retry later",
                         retry_after_s=retry_after_s)
        self.actor = actor
        self.capacity = capacity


class ControlMessage:
    """Marker base: messages of this kind (pings, reconfigure, stop) pass the bound."""


def _is_control(message: Any) -> bool:
    return isinstance(message, ControlMessage | messages._ActorStop)


class BoundedInbox:
    """The object Pykka's actor loop reads from, with a capacity on ordinary messages.

    Pykka calls only put/get/empty on it. queue.Queue(maxsize=N) would make tell, ask and stop
    block forever on a full queue; here put raises MailboxFull instead, at once, in the sender's
    thread. Control messages are appended even when full so a stop or a liveness ping always
    reaches a busy actor (order is kept: they still queue behind earlier messages).
    """

    def __init__(self, actor: str, capacity: int | None) -> None:
        self.actor = actor
        self.capacity = capacity
        self._items: collections.deque[Any] = collections.deque()
        self._not_empty = threading.Condition(threading.Lock())
        self._depth = metrics.MAILBOX_DEPTH.labels(actor=actor)
        self._rejected = metrics.MAILBOX_REJECTED.labels(actor=actor)
        metrics.MAILBOX_CAPACITY.labels(actor=actor).set(capacity or 0)
        self._depth.set(0)

    def set_capacity(self, capacity: int | None) -> None:
        """Live-tunable: shrinking never drops queued messages, it only refuses new ones."""
        self.capacity = capacity
        metrics.MAILBOX_CAPACITY.labels(actor=self.actor).set(capacity or 0)

    def put(self, envelope: Any, block: bool = True, timeout: float | None = None) -> None:
        with self._not_empty:
            full = self.capacity is not None and len(self._items) >= self.capacity
            if full and not _is_control(envelope.message):
                self._rejected.inc()
                raise MailboxFull(self.actor, self.capacity or 0)
            self._items.append(envelope)
            self._depth.set(len(self._items))
            self._not_empty.notify()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        with self._not_empty:
            while not self._items:
                # Blocking here is the actor thread waiting for work; Pykka's loop has no timeout.
                self._not_empty.wait(timeout)
                if timeout is not None and not self._items:
                    raise IndexError("inbox empty")
            envelope = self._items.popleft()
            self._depth.set(len(self._items))
            return envelope

    def forget_series(self) -> None:
        """Drop this actor's mailbox series from /metrics (the actor is gone for good)."""
        for family in (metrics.MAILBOX_DEPTH, metrics.MAILBOX_CAPACITY, metrics.MAILBOX_REJECTED):
            with contextlib.suppress(KeyError):
                family.remove(self.actor)

    def empty(self) -> bool:
        with self._not_empty:
            return not self._items

    def qsize(self) -> int:
        with self._not_empty:
            return len(self._items)
