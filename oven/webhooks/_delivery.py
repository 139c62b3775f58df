"""One webhook delivery: its record, and the loop that tries it with backoff until it is settled.

Policy: a 2xx answer delivers; 408, 429, 5xx, timeouts and connection errors are retried after
`initial_backoff_s` doubling up to `max_backoff_s` (plus up to 20 % jitter; Retry-After is
honoured up to the cap); any other answer (3xx, since redirects are not followed, and 4xx) is
final, and so is a URL refused by the current settings.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import enum
import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from oven import metrics
from oven.webhooks._settings import WebhookSettings
from oven.webhooks._signing import sign
from oven.webhooks._targets import CallbackRefused, check_resolved

log = logging.getLogger(__name__)

DELIVERIES_KIND = "webhook_deliveries"  # store document kind, one document per delivery
JITTER = 0.2
RETRY_STATUSES = frozenset({408, 429})
USER_AGENT = "oven-webhooks/1"


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    ABANDONED = "abandoned"


@dataclass
class Attempt:
    at: float
    duration_s: float
    status: int | None = None
    error: str | None = None


@dataclass
class Delivery:
    id: str
    kind: str
    subject_id: str
    url: str
    payload: dict[str, Any]
    created_at: float
    state: DeliveryState = DeliveryState.PENDING
    attempts: list[Attempt] = field(default_factory=list)
    finished_at: float | None = None

    def finish(self, state: DeliveryState) -> None:
        self.state = state
        self.finished_at = time.time()

    def document(self) -> dict[str, Any]:
        """The store document: what was sent where, and how each attempt went."""
        return {
            "id": self.id,
            "kind": self.kind,
            "subject_id": self.subject_id,
            "url": self.url,
            "state": self.state.value,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "attempts": [
                {"at": a.at, "status": a.status, "error": a.error,
                 "duration_s": round(a.duration_s, 4)}
                for a in self.attempts
            ],
        }


def encode_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed (receivers must verify these, not a re-encoding)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def backoff_s(failures: int, settings: WebhookSettings) -> float:
    """Wait after the `failures`-th failed attempt: doubling from initial to max, plus jitter."""
    base = min(settings.initial_backoff_s * 2 ** (failures - 1), settings.max_backoff_s)
    return base * (1 + random.uniform(0, JITTER))


def _retry_after_s(response: httpx.Response, settings: WebhookSettings) -> float | None:
    """The wait a receiver asked for (RFC 9110: seconds or an HTTP date), capped at
    `max_backoff_s`; None when it asked for none we can read (our own backoff then)."""
    value = response.headers.get("retry-after", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        # An HTTP date is GMT; one written without a zone must not be read as local time.
        seconds = when.replace(tzinfo=when.tzinfo or datetime.UTC).timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), settings.max_backoff_s)


def _result(status: int) -> str:
    return f"{status // 100}xx"


async def _attempt(
    delivery: Delivery, body: bytes, number: int, client: httpx.AsyncClient,
    settings: WebhookSettings,
) -> tuple[Attempt, bool, float | None]:
    """One POST; returns the attempt, whether it may be retried, and a Retry-After if given."""
    started, clock = time.time(), time.monotonic()

    def done(result: str, *, status: int | None = None, error: str | None = None) -> Attempt:
        metrics.WEBHOOK_ATTEMPTS.labels(result=result).inc()
        return Attempt(at=started, duration_s=time.monotonic() - clock, status=status,
                       error=error)

    try:
        await check_resolved(delivery.url, settings)
    except CallbackRefused as exc:
        return done("refused", error=str(exc)), False, None
    except OSError as exc:
        return done("connection_error", error=str(exc)), True, None
    assert settings.secret is not None  # check_resolved refuses unsigned deliveries
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Oven-Signature": sign(settings.secret.get_secret_value(), body),
        "X-Oven-Delivery": delivery.id,
        "X-Oven-Event": delivery.kind,
        "X-Oven-Attempt": str(number),
    }
    try:
        # The outer bound covers the whole exchange: httpx's timeouts are per operation, so a
        # receiver trickling bytes could otherwise hold an attempt for ever.
        async with asyncio.timeout(settings.timeout_s):
            # stream(): only the status line and headers are read; the body is never buffered.
            async with client.stream("POST", delivery.url, content=body, headers=headers,
                                     timeout=settings.timeout_s) as response:
                status = response.status_code
                retry_after = _retry_after_s(response, settings)
    except (TimeoutError, httpx.TimeoutException):
        return done("timeout", error=f"no answer within {settings.timeout_s:g} s"), True, None
    except httpx.HTTPError as exc:
        return done("connection_error", error=f"{type(exc).__name__}: {exc}"), True, None
    if 200 <= status < 300:
        return done(_result(status), status=status), False, None
    retry = status >= 500 or status in RETRY_STATUSES
    error = None if retry or status >= 400 else "redirects are not followed"
    return done(_result(status), status=status, error=error), retry, retry_after


# The retry loop is written out, not stamina or tenacity: settings are read before every
# attempt (a reload applies in flight), an attempt's outcome is a status rather than an
# exception, the receiver's Retry-After replaces the backoff, and each attempt is recorded.
# stamina fixes attempts and backoff per call and adds jitter in seconds; tenacity needs a
# callback for each of those four, which is this loop spread over four places.
async def deliver(
    delivery: Delivery,
    *,
    client: httpx.AsyncClient,
    settings: Callable[[], WebhookSettings],
    record: Callable[[Delivery], Awaitable[None]],
) -> DeliveryState:
    """Try `delivery` until delivered, refused or out of attempts; `record` after each attempt.

    `settings` is read before every attempt, so a config reload applies to deliveries in flight.
    """
    try:
        body = encode_body(delivery.payload)
    except (TypeError, ValueError) as exc:
        delivery.attempts.append(Attempt(at=time.time(), duration_s=0.0,
                                         error=f"payload is not JSON: {exc}"))
        return await _settle(delivery, DeliveryState.FAILED, record)
    number = 0
    while True:
        number += 1
        current = settings()
        attempt, retry, retry_after = await _attempt(delivery, body, number, client, current)
        delivery.attempts.append(attempt)
        if attempt.status is not None and 200 <= attempt.status < 300:
            return await _settle(delivery, DeliveryState.DELIVERED, record)
        if not retry or number >= current.max_attempts:
            return await _settle(delivery, DeliveryState.FAILED, record)
        await record(delivery)
        wait = retry_after if retry_after is not None else backoff_s(number, current)
        log.info("webhook delivery=%s %s=%s attempt %d failed (%s); retrying in %.1f s",
                 delivery.id, delivery.kind, delivery.subject_id, number,
                 attempt.status or attempt.error, wait)
        await asyncio.sleep(wait)


async def _settle(
    delivery: Delivery, state: DeliveryState, record: Callable[[Delivery], Awaitable[None]]
) -> DeliveryState:
    delivery.finish(state)
    metrics.WEBHOOK_DELIVERIES.labels(outcome=state.value).inc()
    level = logging.INFO if state is DeliveryState.DELIVERED else logging.WARNING
    last = delivery.attempts[-1]
    log.log(level, "webhook delivery=%s %s=%s %s after %d attempt(s) (last: %s)",
            delivery.id, delivery.kind, delivery.subject_id, state.value,
            len(delivery.attempts), last.status or last.error)
    await record(delivery)
    return state
