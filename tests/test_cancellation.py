"""A cancelled task stops, even when what it waited on finished in the same loop turn.

On Python 3.11, `asyncio.wait_for` returns the inner result instead of raising when the outer
task is cancelled just as the inner awaitable completes: the cancellation is lost and the task
runs on. A dashboard stream cancelled as a new state was published kept streaming forever (the
server's graceful stop then waited on it). oven bounds waits with `asyncio.timeout` instead.
"""

from __future__ import annotations

import asyncio
import pathlib

import pytest

from oven.http._dashboard_hub import DashboardHub

OVEN = pathlib.Path(__file__).resolve().parent.parent / "oven"


async def test_a_dashboard_stream_cancelled_as_a_state_is_published_stops() -> None:
    async def gather() -> dict[str, int]:
        return {"a": 1}

    hub = DashboardHub(gather, tick_s=60)
    hub.publish({"a": 0})
    sent: list[bytes] = []

    async def send(frame: bytes) -> None:
        sent.append(frame)

    task = asyncio.create_task(hub.stream(send, min_interval_s=0))
    async with asyncio.timeout(5):
        while not sent:  # the snapshot went out: the stream now waits for a change
            await asyncio.sleep(0)
    for _ in range(3):
        await asyncio.sleep(0)
    hub.publish({"a": 2})  # wakes the stream's wait ...
    task.cancel()  # ... in the same turn as the cancel
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await asyncio.shield(task)
    assert task.cancelled()
    assert hub.clients == 0


def test_no_module_bounds_a_wait_with_asyncio_wait_for() -> None:
    offenders = [f"{path.relative_to(OVEN.parent)}:{number}"
                 for path in sorted(OVEN.rglob("*.py"))
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if "asyncio.wait_for(" in line]
    assert offenders == [], "use `async with asyncio.timeout(...)` (see this module's docstring)"
