"""Grabs carrying callback_url, through a real `oven serve`: signed POSTs, also for cache hits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from oven.webhooks import verify
from tests.oven_process import OvenProcess
from tests.waiting import wait_until

from .conftest import SECRET
from .receiver import Receiver


@pytest.fixture
def oven(tmp_path: Path, receiver: Receiver) -> Iterator[OvenProcess]:
    process = OvenProcess(tmp_path, config={"webhooks": {
        "secret": SECRET, "allowed_origins": [receiver.origin], "allow_private": True,
        "initial_backoff_s": 0.1}})
    process.start()
    try:
        yield process
    finally:
        assert process.stop() == 0


def test_a_grab_with_a_callback_url_posts_its_signed_result_when_complete_and_on_a_cache_hit(
        oven: OvenProcess, receiver: Receiver) -> None:
    body = {"piece": "still", "format": "png", "width": 200, "height": 120,
            "callback_url": receiver.url("/done")}
    accepted = httpx.post(f"{oven.url}/grabs", json=body, timeout=30).json()

    first = wait_until("the callback", lambda: receiver.received("/done"), timeout=60)[0]
    assert verify(SECRET, first.body, first.headers["X-Oven-Signature"])
    assert first.headers["X-Oven-Event"] == "grab"
    payload = json.loads(first.body)
    assert payload["id"] == accepted["id"] and payload["state"] == "complete"
    assert payload["error"] is None and payload["url"].endswith(".png")
    stored = httpx.get(f"{oven.url}{payload['url']}", timeout=10)  # local storage: a path here
    assert stored.status_code == 200 and stored.content[:4] == b"\x89PNG"

    hit = httpx.post(f"{oven.url}/grabs", json=body, timeout=30).json()
    assert hit["cached"] is True
    second = wait_until("the cache hit's callback", lambda: receiver.received("/done")[1:],
                        timeout=30)[0]
    assert verify(SECRET, second.body, second.headers["X-Oven-Signature"])
    assert json.loads(second.body)["state"] == "complete"


def test_a_callback_url_outside_the_allowed_origins_is_refused_before_anything_runs(
        oven: OvenProcess) -> None:
    refused = httpx.post(f"{oven.url}/grabs", timeout=30, json={
        "piece": "still", "format": "png", "callback_url": "http://198.51.100.7/hook"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "callback_refused"
