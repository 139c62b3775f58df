"""Where a grab's result lives is asked of the GrabQueue, which asks the Uploader for it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import tests.grab_queue.conftest as queue_conftest
from oven.actors.grab_queue import LocateResult
from oven.actors.uploader import Locate, Location
from oven.grabs import GrabResult
from oven.http import GrabClient
from tests.grab_queue.conftest import StartQueue
from tests.grab_queue.stubs import StubUploader


class LocatingUploader(StubUploader):
    """The stub uploader, answering Locate as the Uploader does: a URL for a key it stored
    (stub storage has no local path), neither for one it never saw."""

    def receive(self, message: Any) -> Any:
        match message:
            case Locate(key=key):
                self.script.take(f"locate {key}")
                stored = any(call == f"stored {key}" for call in self.script.calls)
                return Location(path=None, url=f"stub://{key}" if stored else None)
        return super().receive(message)

    async def _upload(self, job: Any) -> Any:
        stored = await super()._upload(job)
        self.script.calls.append(f"stored {job.key}")
        return stored


@pytest.fixture
def locating(monkeypatch: pytest.MonkeyPatch) -> None:
    # conftest builds its system from the stub named StubUploader at start time
    monkeypatch.setattr(queue_conftest, "StubUploader", LocatingUploader)


@pytest.mark.usefixtures("locating")
def test_the_grab_queue_answers_where_a_finished_grabs_result_lives(
        start_queue: StartQueue) -> None:
    q = start_queue()
    view = q.final(q.submit().job["id"])
    key = view["result"]["storage_key"]

    location = q.system.ask("grab_queue", LocateResult(key), timeout=10)
    assert location == Location(path=None, url=f"stub://{key}")
    assert f"locate {key}" in q.uploader.calls
    unknown = q.system.ask("grab_queue", LocateResult("grabs/no/such.png"), timeout=10)
    assert unknown == Location(path=None, url=None)


@pytest.mark.usefixtures("locating")
def test_the_grab_client_locates_a_result_through_the_grab_queue(
        start_queue: StartQueue) -> None:
    q = start_queue()
    view = q.final(q.submit().job["id"])
    key = view["result"]["storage_key"]
    client = GrabClient(q.system)
    asked: list[str] = []
    original = q.system.ask_async

    async def recording(name: str, message: Any, **kwargs: Any) -> Any:
        asked.append(name)
        return await original(name, message, **kwargs)

    q.system.ask_async = recording  # type: ignore[method-assign]

    async def locate() -> tuple[Location, Location]:
        return (await client.locate(GrabResult(storage_key=key)),
                await client.locate_key(key))

    assert asyncio.run(locate()) == (Location(path=None, url=f"stub://{key}"),) * 2
    assert asked == ["grab_queue", "grab_queue"]
