"""A real GrabQueue and a real StoreActor (SQLite under tmp) in a real ActorSystem, with stub
browser, encoder and uploader actors (see stubs.py for why they are stubs)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from oven.actors.grab_queue import GetJob, GrabQueue, Submit, Submitted, WaitFor
from oven.actors.store import StoreActor
from oven.config import load
from oven.grabs import GrabRequest
from oven.readiness import ReadinessBoard
from oven.supervisor import ChildSpec
from oven.system import ActorSystem
from tests.grab_queue.stubs import Script, StubBrowser, StubEncoder, StubUploader
from tests.oven_process import write_config

TARGET = "http://pieces.invalid/still"  # never fetched: the browser is a stub

# Fast enough for a test, and each lease/heartbeat pair valid (heartbeat at most half a lease).
QUICK: dict[str, dict[str, Any]] = {
    "browser": {"pages": 1},
    "cluster": {"poll_s": 0.05, "heartbeat_s": 0.5, "lease_s": 1.0},
}


@dataclass
class QueueSystem:
    system: ActorSystem
    browser: Script
    encoder: Script
    uploader: Script
    board: ReadinessBoard  # what /ready reads

    def submit(self, **grab: Any) -> Submitted:
        request = GrabRequest.model_validate({"piece": "still", **grab})
        submitted: Submitted = self.system.ask("grab_queue", Submit(request, TARGET), timeout=10)
        return submitted

    def job(self, job_id: str) -> dict[str, Any]:
        view: dict[str, Any] | None = self.system.ask("grab_queue", GetJob(job_id), timeout=10)
        assert view is not None, job_id
        return view

    def final(self, job_id: str, *, timeout: float = 30) -> dict[str, Any]:
        """The job's view once final: the queue answers a WaitFor as soon as it settles."""
        view: dict[str, Any] | None = self.system.ask(
            "grab_queue", WaitFor(job_id, timeout), timeout=timeout + 10)
        assert view is not None and view["state"] in ("complete", "failed", "cancelled"), view
        return view

    def stop(self) -> None:
        self.system.stop()


@dataclass
class Scripts:
    browser: Script = field(default_factory=Script)
    encoder: Script = field(default_factory=Script)
    uploader: Script = field(default_factory=Script)


StartQueue = Callable[..., QueueSystem]


def _build(data_dir: Path, name: str, sections: dict[str, dict[str, Any]],
           scripts: Scripts) -> QueueSystem:
    config = {section: dict(values) for section, values in QUICK.items()}
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    config.setdefault("server", {})["data_dir"] = str(data_dir)
    config.setdefault("cluster", {})["instance_id"] = name
    loaded = load(write_config(data_dir / f"{name}.toml", config), env={})
    settings, board = loaded.settings, ReadinessBoard()

    def stub(actor: type[StubBrowser | StubEncoder | StubUploader], script: Script
             ) -> Callable[[Any], Any]:
        return lambda ctx: actor.start(ctx, script)

    specs = [
        ChildSpec(id="store", start=lambda ctx: StoreActor.start(ctx, settings, board),
                  mailbox_capacity=1000, start_timeout_s=30, shutdown_timeout_s=10),
        ChildSpec(id="uploader", start=stub(StubUploader, scripts.uploader),
                  mailbox_capacity=100, shutdown_timeout_s=10),
        ChildSpec(id="encoder", start=stub(StubEncoder, scripts.encoder),
                  mailbox_capacity=100, shutdown_timeout_s=10),
        ChildSpec(id="browser", start=stub(StubBrowser, scripts.browser),
                  mailbox_capacity=100, shutdown_timeout_s=10),
        ChildSpec(id="grab_queue", start=lambda ctx: GrabQueue.start(ctx, settings, board),
                  mailbox_capacity=1000, start_timeout_s=40, shutdown_timeout_s=15),
    ]
    system = ActorSystem(loaded, specs)
    system.start()
    return QueueSystem(system, scripts.browser, scripts.encoder, scripts.uploader, board)


@pytest.fixture
def start_queue(tmp_path: Path) -> Iterator[StartQueue]:
    """Starts queue systems on one data dir (so one SQLite store); each is stopped at the end.
    Give `name` to start a second instance beside the first."""
    started: list[QueueSystem] = []

    def start(config: dict[str, dict[str, Any]] | None = None, *, name: str = "queue-a",
              scripts: Scripts | None = None) -> QueueSystem:
        system = _build(tmp_path, name, config or {}, scripts or Scripts())
        started.append(system)
        return system

    yield start
    for system in reversed(started):
        system.stop()
