"""The HTTP edge in-process: a full mailbox becomes 429 with Retry-After, without blocking."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
from actors_for_tests import Block, Worker

from oven._system import ActorSystem
from oven.config import load
from oven.http import create_app
from oven.http._grabs import grab_routes
from oven.supervisor import ChildSpec


async def test_full_mailbox_answers_429_with_retry_after_without_blocking() -> None:
    system = ActorSystem(load(None, env={}), [
        ChildSpec(id="grab_queue", start=Worker.start, mailbox_capacity=1),
    ])
    system.start()
    release, started = threading.Event(), threading.Event()
    try:
        ref = system.ref("grab_queue")
        ref.tell(Block(release, started))  # the actor is busy...
        assert started.wait(5)
        ref.tell(Block(release))  # ...and its one mailbox slot is taken
        app: Any = create_app(system, routes=grab_routes())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://oven") as client:
            t0 = time.perf_counter()
            r = await client.post("/grabs", json={"piece": "anim", "format": "png"})
            elapsed = time.perf_counter() - t0
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"]["code"] == "busy"
        assert "grab_queue mailbox is full" in r.json()["error"]["message"]
        assert elapsed < 0.5, f"the 429 took {elapsed:.3f} s"
    finally:
        release.set()
        system.stop()
