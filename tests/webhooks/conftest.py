from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from oven.actors.store import StoreActor
from oven.actors.webhooks._actor import ListDeliveries, Webhooks
from oven.config import load
from oven.readiness import ReadinessBoard
from oven.supervisor import ChildSpec
from oven.system import ActorSystem

from .receiver import Receiver

SECRET = "test-secret-0123456789"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _toml(value: Any) -> str:
    return json.dumps(value)  # JSON strings, numbers, booleans and lists are valid TOML


class WebhookSystem:
    """The real Store (SQLite under tmp) and the Webhooks actor, in a real ActorSystem."""

    def __init__(self, data_dir: Path, webhooks: dict[str, Any],
                 *, with_webhooks: bool = True) -> None:
        path = data_dir / "oven.toml"
        lines = ["[server]", f"data_dir = {_toml(str(data_dir))}", "[webhooks]"]
        lines += [f"{k} = {_toml(v)}" for k, v in webhooks.items()]
        path.write_text("\n".join(lines) + "\n")
        self.settings = load(path, env={}).settings
        board = ReadinessBoard()
        settings = self.settings
        specs = [ChildSpec(id="store", start=lambda ctx: StoreActor.start(ctx, settings, board),
                           mailbox_capacity=100, start_timeout_s=30, shutdown_timeout_s=10)]
        if with_webhooks:
            specs.append(ChildSpec(id="webhooks", start=lambda ctx: Webhooks.start(ctx, settings),
                                   mailbox_capacity=settings.webhooks.max_pending,
                                   shutdown_timeout_s=10))
        self.system = ActorSystem(load(path, env={}), specs)
        self.system.start()

    def deliveries(self) -> list[dict[str, Any]]:
        docs: list[dict[str, Any]] = self.system.ask("webhooks", ListDeliveries(100), timeout=10)
        return docs

    def delivery(self, delivery_id: str) -> dict[str, Any] | None:
        return next((d for d in self.deliveries() if d["id"] == delivery_id), None)

    def stop(self) -> None:
        self.system.stop()


@pytest.fixture
def start_webhooks(tmp_path: Path, receiver: Receiver) -> Iterator[Callable[..., WebhookSystem]]:
    started: list[WebhookSystem] = []

    def start(**overrides: Any) -> WebhookSystem:
        webhooks: dict[str, Any] = {
            "secret": SECRET,
            "allowed_origins": [receiver.origin],
            "allow_private": True,
            "initial_backoff_s": 0.05,
            "max_backoff_s": 0.2,
            "timeout_s": 5.0,
            **overrides,
        }
        system = WebhookSystem(tmp_path, webhooks)
        started.append(system)
        return system

    yield start
    receiver.release.set()  # let hanging handlers go before the actors stop
    for system in started:
        system.stop()
