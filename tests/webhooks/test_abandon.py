"""Deliveries still pending when the actor stops are recorded as abandoned, not lost."""

from __future__ import annotations

from pathlib import Path

from oven.actors.store import StoreCall
from oven.actors.webhooks import Deliver
from oven.webhooks import DELIVERIES_KIND
from tests.waiting import wait_until

from .conftest import SECRET, WebhookSystem
from .receiver import HANG, Receiver


def test_pending_deliveries_are_recorded_as_abandoned_at_stop(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.script("/hang", [HANG])
    webhooks = {"secret": SECRET, "allowed_origins": [receiver.origin], "allow_private": True,
                "timeout_s": 60}
    system = WebhookSystem(tmp_path, webhooks)
    try:
        delivery_id = system.system.ask(
            "webhooks", Deliver("grab", "job-1", receiver.url("/hang"), {"id": "job-1"}),
            timeout=10)
        wait_until("the request to arrive", lambda: receiver.received("/hang"), timeout=20)
    finally:
        system.stop()  # webhooks stops before the store (reverse start order)

    reopened = WebhookSystem(tmp_path, webhooks, with_webhooks=False)
    try:
        doc = reopened.system.ask(
            "store", StoreCall("get_doc", (DELIVERIES_KIND, delivery_id)), timeout=10)
    finally:
        reopened.stop()
    assert doc is not None
    assert doc["state"] == "abandoned"
    assert doc["finished_at"] is not None
