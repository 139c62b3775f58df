"""The Webhooks actor against a real receiver: signed, retried, bounded, recorded."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY

from oven.actors.runtime import Reconfigure
from oven.actors.webhooks import Deliver
from tests.waiting import wait_until

from .conftest import SECRET, WebhookSystem
from .receiver import HANG, Receiver

PAYLOAD = {"id": "job-1", "state": "complete", "url": "http://oven/r/1.png",
           "thumbnail_url": None, "error": None}


def deliveries(outcome: str) -> float:
    return REGISTRY.get_sample_value("oven_webhook_deliveries_total", {"outcome": outcome}) or 0.0


def settled(system: WebhookSystem, delivery_id: str, *, timeout: float = 20) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        doc = system.delivery(delivery_id)
        return doc if doc is not None and doc["state"] != "pending" else None

    doc: dict[str, Any] = wait_until(f"delivery {delivery_id}", done, timeout=timeout)
    return doc


def test_a_result_is_delivered_with_a_valid_signature_and_recorded(
    start_webhooks: Callable[..., WebhookSystem], receiver: Receiver
) -> None:
    system = start_webhooks()
    delivery_id = system.system.ask(
        "webhooks", Deliver("grab", "job-1", receiver.url("/hook"), PAYLOAD), timeout=10)

    doc = settled(system, delivery_id)
    [request] = receiver.received("/hook")
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["X-Oven-Signature"], expected)
    assert request.headers["X-Oven-Delivery"] == delivery_id
    assert request.headers["X-Oven-Event"] == "grab"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == PAYLOAD
    assert doc["state"] == "delivered"
    assert doc["subject_id"] == "job-1" and doc["kind"] == "grab"
    [attempt] = doc["attempts"]
    assert attempt["status"] == 200 and attempt["error"] is None
    assert attempt["duration_s"] >= 0 and attempt["at"] > 0


def test_a_delivery_is_retried_after_server_errors_until_it_succeeds(
    start_webhooks: Callable[..., WebhookSystem], receiver: Receiver
) -> None:
    receiver.script("/flaky", [500, 500, 200])
    system = start_webhooks(initial_backoff_s=0.1, max_backoff_s=1.0)
    delivery_id = system.system.ask(
        "webhooks", Deliver("bake", "bake-1", receiver.url("/flaky"), PAYLOAD), timeout=10)

    doc = settled(system, delivery_id)
    assert doc["state"] == "delivered"
    assert [a["status"] for a in doc["attempts"]] == [500, 500, 200]
    times = [r.at for r in receiver.received("/flaky")]
    assert len(times) == 3
    # 0.1 s then 0.2 s of backoff (plus up to 20 % jitter) between the attempts
    assert times[1] - times[0] >= 0.1
    assert times[2] - times[1] >= 0.2
    assert all(r.headers["X-Oven-Delivery"] == delivery_id for r in receiver.received("/flaky"))


def test_a_delivery_gives_up_after_max_attempts_and_records_each_one(
    start_webhooks: Callable[..., WebhookSystem], receiver: Receiver
) -> None:
    receiver.script("/down", [500])
    system = start_webhooks(max_attempts=4)
    failed_before = deliveries("failed")
    delivery_id = system.system.ask(
        "webhooks", Deliver("grab", "job-2", receiver.url("/down"), PAYLOAD), timeout=10)

    doc = settled(system, delivery_id)
    assert doc["state"] == "failed"
    assert [a["status"] for a in doc["attempts"]] == [500, 500, 500, 500]
    assert len(receiver.received("/down")) == 4
    assert deliveries("failed") == failed_before + 1


def test_a_client_error_is_final_but_429_is_retried(
    start_webhooks: Callable[..., WebhookSystem], receiver: Receiver
) -> None:
    receiver.script("/gone", [404, 200])
    receiver.script("/busy", [429, 200])
    system = start_webhooks()
    gone = system.system.ask(
        "webhooks", Deliver("grab", "job-3", receiver.url("/gone"), PAYLOAD), timeout=10)
    busy = system.system.ask(
        "webhooks", Deliver("grab", "job-4", receiver.url("/busy"), PAYLOAD), timeout=10)

    gone_doc, busy_doc = settled(system, gone), settled(system, busy)
    assert gone_doc["state"] == "failed"
    assert [a["status"] for a in gone_doc["attempts"]] == [404]
    assert busy_doc["state"] == "delivered"
    assert [a["status"] for a in busy_doc["attempts"]] == [429, 200]


def test_a_redirect_is_not_followed(
    start_webhooks: Callable[..., WebhookSystem], receiver: Receiver
) -> None:
    receiver.script("/moved", [302])
    system = start_webhooks()
    delivery_id = system.system.ask(
        "webhooks", Deliver("grab", "job-5", receiver.url("/moved"), PAYLOAD), timeout=10)

    doc = settled(system, delivery_id)
    assert doc["state"] == "failed"
    assert doc["attempts"][0]["status"] == 302
    assert "redirect" in doc["attempts"][0]["error"]
    assert receiver.received("/redirected") == []


def test_a_hanging_receiver_times_out_without_blocking_other_deliveries(
    start_webhooks: Callable[..., WebhookSystem], receiver: Receiver
) -> None:
    receiver.script("/hang", [HANG])
    system = start_webhooks(timeout_s=1.5, max_attempts=1)
    t0 = time.monotonic()
    hung = system.system.ask(
        "webhooks", Deliver("grab", "job-6", receiver.url("/hang"), PAYLOAD), timeout=10)
    wait_until("the hanging request to arrive", lambda: receiver.received("/hang"),
               timeout=20)
    quick = system.system.ask(
        "webhooks", Deliver("grab", "job-7", receiver.url("/quick"), PAYLOAD), timeout=10)

    assert settled(system, quick)["state"] == "delivered"
    quick_done = time.monotonic() - t0
    hung_doc = settled(system, hung)
    assert quick_done < 1.5, f"the second delivery waited {quick_done:.2f} s behind the first"
    assert hung_doc["state"] == "failed"
    [attempt] = hung_doc["attempts"]
    assert attempt["status"] is None and "no answer within 1.5 s" in attempt["error"]
    assert 1.4 <= attempt["duration_s"] < 5


def test_deliveries_over_max_pending_are_dropped_and_counted(
    start_webhooks: Callable[..., WebhookSystem], receiver: Receiver
) -> None:
    receiver.script("/hang", [HANG])
    system = start_webhooks(max_pending=1, timeout_s=20)
    dropped_before = deliveries("dropped")
    first = system.system.ask(
        "webhooks", Deliver("grab", "job-8", receiver.url("/hang"), PAYLOAD), timeout=10)
    second = system.system.ask(
        "webhooks", Deliver("grab", "job-9", receiver.url("/quick"), PAYLOAD), timeout=10)

    assert first is not None
    assert second is None
    assert deliveries("dropped") == dropped_before + 1
    assert receiver.received("/quick") == []


def test_a_refused_callback_url_is_recorded_without_being_called(
    start_webhooks: Callable[..., WebhookSystem], receiver: Receiver
) -> None:
    system = start_webhooks()
    delivery_id = system.system.ask(
        "webhooks", Deliver("grab", "job-10", "http://127.0.0.2:9/elsewhere", PAYLOAD),
        timeout=10)

    doc = settled(system, delivery_id)
    assert doc["state"] == "failed"
    [attempt] = doc["attempts"]
    assert "origin http://127.0.0.2:9 is not allowed" in attempt["error"]


def test_reloaded_settings_apply_to_the_next_delivery(
    start_webhooks: Callable[..., WebhookSystem], receiver: Receiver
) -> None:
    system = start_webhooks()
    narrowed = system.settings.model_copy(update={"webhooks": system.settings.webhooks.model_copy(
        update={"allowed_origins": ["https://hooks.example.com"]})})
    system.system.ask("webhooks", Reconfigure(narrowed), timeout=10)
    delivery_id = system.system.ask(
        "webhooks", Deliver("grab", "job-11", receiver.url("/hook"), PAYLOAD), timeout=10)

    doc = settled(system, delivery_id)
    assert doc["state"] == "failed"
    assert "is not allowed" in doc["attempts"][0]["error"]
    assert receiver.received("/hook") == []
