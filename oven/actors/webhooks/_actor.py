"""Webhooks actor: POSTs grab/bake results to callback URLs, signed, retried, recorded.

Senders `tell` it a `Deliver` and move on: a delivery never blocks the job it reports on. Each
delivery is its own task on the actor's loop; their number is bounded by `max_pending` (over it a
delivery is dropped, counted and logged). On stop, deliveries still pending are recorded as
abandoned.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from oven import metrics
from oven.actors.runtime import ActorContext, AsyncActor
from oven.actors.store import StoreClient
from oven.config import Settings
from oven.webhooks import (
    DELIVERIES_KIND,
    Delivery,
    DeliveryState,
    WebhookSettings,
    deliver,
)

log = logging.getLogger(__name__)

ABANDON_RECORD_TIMEOUT_S = 5.0  # stop must finish inside the child's shutdown timeout


@dataclass(frozen=True)
class Deliver:
    """POST `payload` (JSON) to `url` for the grab or bake `subject_id`.

    `kind` is the event name ("grab" or "bake", sent as X-Oven-Event). The URL must already have
    passed `oven.webhooks.check_callback_url` at the edge; it is checked again before sending.
    Asked, the reply is the delivery id (None when dropped); told, nobody waits.
    """

    kind: str
    subject_id: str
    url: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class ListDeliveries:
    """The most recent delivery records (newest first), as stored."""

    limit: int = 50


class Webhooks(AsyncActor):
    def __init__(self, ctx: ActorContext, settings: Settings) -> None:
        super().__init__(ctx)
        self.webhooks: WebhookSettings = settings.webhooks
        self.store = StoreClient(ctx.lookup, timeout_s=settings.supervisor.ask_timeout_s)
        self.client: httpx.AsyncClient | None = None
        self._pending: dict[str, tuple[Delivery, asyncio.Task[None]]] = {}

    async def start_async(self) -> None:
        # One client for all deliveries (connection reuse); never follow redirects: a 3xx could
        # send the signed result somewhere the allow-list never approved.
        self.client = httpx.AsyncClient(follow_redirects=False, trust_env=False)

    async def stop_async(self) -> None:
        pending = list(self._pending.values())
        self._pending.clear()
        for _, task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*(task for _, task in pending), return_exceptions=True)
            log.warning("webhooks: %d pending deliveries abandoned at stop", len(pending))
            await self._record_abandoned([delivery for delivery, _ in pending])
        if self.client is not None:
            await self.client.aclose()

    def reconfigure(self, settings: Any) -> None:
        # A plain reference swap: deliveries read it at each attempt, from the loop thread.
        if isinstance(settings, Settings):
            self.webhooks = settings.webhooks

    def receive(self, message: Any) -> Any:
        match message:
            case Deliver():
                return self.defer(self._accept(message))
            case ListDeliveries(limit=limit):
                return self.defer(self.store.list_docs(DELIVERIES_KIND, limit=max(1, limit)))
        return super().receive(message)

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    async def _accept(self, message: Deliver) -> str | None:
        settings = self.webhooks
        if len(self._pending) >= settings.max_pending:
            # The bound: a dead receiver must not grow memory without limit; the job itself is
            # unaffected, only its notification is lost (and counted).
            metrics.WEBHOOK_DELIVERIES.labels(outcome="dropped").inc()
            log.warning("webhook dropped kind=%s subject=%s: %d deliveries already pending",
                        message.kind, message.subject_id, len(self._pending))
            return None
        delivery = Delivery(
            id=uuid.uuid4().hex,
            kind=message.kind,
            subject_id=message.subject_id,
            url=message.url,
            payload=message.payload,
            created_at=time.time(),
        )
        task = asyncio.get_running_loop().create_task(self._run(delivery))
        self._pending[delivery.id] = (delivery, task)
        return delivery.id

    async def _run(self, delivery: Delivery) -> None:
        assert self.client is not None
        try:
            await deliver(delivery, client=self.client, settings=lambda: self.webhooks,
                          record=self._record)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook delivery=%s failed unexpectedly", delivery.id)
        finally:
            self._pending.pop(delivery.id, None)

    async def _record(self, delivery: Delivery) -> None:
        try:
            await self.store.put_doc(DELIVERIES_KIND, delivery.id, delivery.document())
        except Exception as exc:
            # The record is for people looking later; a store hiccup must not stop the retries.
            log.warning("webhook delivery=%s: could not record attempt: %s", delivery.id, exc)

    async def _record_abandoned(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            # One cancelled while writing its final record keeps its real outcome.
            if delivery.state is DeliveryState.PENDING:
                delivery.finish(DeliveryState.ABANDONED)
                metrics.WEBHOOK_DELIVERIES.labels(outcome="abandoned").inc()
        try:
            async with asyncio.timeout(ABANDON_RECORD_TIMEOUT_S):
                await asyncio.gather(*(self._record(d) for d in deliveries))
        except TimeoutError:
            log.warning("webhooks: could not record %d abandoned deliveries in %.0f s",
                        len(deliveries), ABANDON_RECORD_TIMEOUT_S)
