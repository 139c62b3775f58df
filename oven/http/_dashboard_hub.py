"""The dashboard's stream: JSON merge patches (RFC 7386), the shared state and its clients.

A client holds no queue: it remembers the last state it was sent and, once it can send again,
gets one patch from that state to the newest, so a slow or hidden tab costs one shared
reference, never a growing buffer. Every send has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from oven import metrics

log = logging.getLogger(__name__)

TICK_S = 0.25  # at most 4 states a second, for the producer and for every client
KEEPALIVE_S = 15.0  # an SSE comment when nothing changed, so idle proxies keep the stream
SEND_TIMEOUT_S = 10.0  # a client that takes no bytes for this long is disconnected

Json = dict[str, Any]
Gather = Callable[[], Awaitable[Json]]
SendBytes = Callable[[bytes], Awaitable[None]]

# -- JSON merge patch (RFC 7386) ---------------------------------------------------------------
# Not the json-merge-patch package: its create_patch compares with ==, so 1 -> true or 1 -> 1.0
# gives no patch and the browser keeps the wrong JSON value, and its merge changes the target in
# place, which here is the state every client shares.


def prune(value: Any) -> Any:
    """Drop None values from objects: in a merge patch null means "delete", never a value."""
    if isinstance(value, Mapping):
        return {str(k): prune(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [prune(v) for v in value]
    return value


def merge_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> Json:
    """The merge patch that turns `old` into `new` (both pruned); {} when they are equal."""
    patch: Json = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if key in old:
            before = old[key]
            if type(before) is type(value) and before == value:
                continue
            if isinstance(before, dict) and isinstance(value, dict):
                patch[key] = merge_diff(before, value)
                continue
        patch[key] = value
    return patch


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply a merge patch as RFC 7386 section 2 defines it; `target` is not modified."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def sse_event(event: str, version: int, body: Json) -> bytes:
    data = json.dumps(body, separators=(",", ":"), allow_nan=False)  # one line: no newlines
    return f"event: {event}\nid: {version}\ndata: {data}\n\n".encode()


# -- the shared state and its clients ----------------------------------------------------------


class DashboardHub:
    """The newest state, the patch that led to it, and one producer while anyone listens."""

    def __init__(self, gather: Gather, *, tick_s: float = TICK_S) -> None:
        self._gather = gather
        self.tick_s = tick_s
        self.version = 0
        self.ready = False  # False until the producer has gathered since it (re)started
        self.state: Json = {}
        self.patch: Json = {}  # from state `version - 1` to `version`
        self.clients = 0
        self.closing = asyncio.Event()  # set by close(): every stream ends as a complete response
        self._changed = asyncio.Event()
        self._producer: asyncio.Task[None] | None = None

    def publish(self, state: Json) -> None:
        state = prune(state)
        if self.ready and state == self.state:
            return  # nothing changed: nobody is woken, nothing is sent
        self.patch = merge_diff(self.state, state)
        self.state = state
        self.version += 1
        self.ready = True
        # Wake every waiting client at once, then give later waiters a fresh event.
        self._changed.set()
        self._changed = asyncio.Event()

    def close(self) -> None:
        """End every stream cleanly (the server is stopping); call it on the hub's loop."""
        self.closing.set()

    async def _produce(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                self.publish(await self._gather())
            except Exception:  # the sources guard themselves: this would be a bug here
                log.exception("dashboard: gathering the state failed")
            await asyncio.sleep(max(0.0, self.tick_s - (loop.time() - started)))

    @contextlib.asynccontextmanager
    async def connected(self) -> AsyncIterator[None]:
        self.clients += 1
        metrics.DASHBOARD_CLIENTS.inc()
        if self._producer is None:
            self._producer = asyncio.create_task(self._produce(), name="dashboard-producer")
        try:
            yield
        finally:
            self.clients -= 1
            metrics.DASHBOARD_CLIENTS.dec()
            if self.clients == 0 and self._producer is not None:
                self._producer.cancel()  # nobody watches: stop asking the actors
                self._producer = None
                self.ready = False  # the next client waits for a fresh state

    async def _wait_change(self, seen: int, timeout: float) -> bool:
        if self.ready and self.version != seen:
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._changed.wait()
            return True
        return False

    async def stream(self, send: SendBytes, *, send_timeout_s: float = SEND_TIMEOUT_S,
                     min_interval_s: float = TICK_S, keepalive_s: float = KEEPALIVE_S) -> None:
        """Send a snapshot, then merged deltas, until cancelled; TimeoutError if a send stalls."""
        loop = asyncio.get_running_loop()
        have: Json | None = None  # the state this client was last sent: its only buffer
        have_version = 0
        last_sent = -math.inf
        async with self.connected():
            while True:
                if not await self._wait_change(have_version, keepalive_s):
                    async with asyncio.timeout(send_timeout_s):
                        await send(b": keep-alive\n\n")
                    continue
                pause = last_sent + min_interval_s - loop.time()
                if pause > 0:
                    await asyncio.sleep(pause)  # states arriving meanwhile merge into one delta
                    continue
                version, state = self.version, self.state
                if have is None:
                    event, body = "snapshot", state
                elif version == have_version + 1:
                    event, body = "delta", self.patch  # computed once for every client
                else:
                    event, body = "delta", merge_diff(have, state)
                    metrics.DASHBOARD_DELTAS_DROPPED.inc(max(0, version - have_version - 1))
                if body or have is None:
                    async with asyncio.timeout(send_timeout_s):
                        await send(sse_event(event, version, body))
                    last_sent = loop.time()
                have, have_version = state, version


class EventStream(Response):
    """text/event-stream from a hub, ended by a client disconnect or a stalled send."""

    def __init__(self, hub: DashboardHub, *, send_timeout_s: float = SEND_TIMEOUT_S) -> None:
        self.hub = hub
        self.send_timeout_s = send_timeout_s
        self.status_code = 200
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8"),
                   (b"cache-control", b"no-store"), (b"x-accel-buffering", b"no")]
        async with asyncio.timeout(self.send_timeout_s):
            await send({"type": "http.response.start", "status": 200, "headers": headers})

        async def send_bytes(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        async def until_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        streaming = asyncio.create_task(self.hub.stream(send_bytes,
                                                        send_timeout_s=self.send_timeout_s))
        watching = asyncio.create_task(until_disconnect())
        closing = asyncio.create_task(self.hub.closing.wait())
        tasks = (streaming, watching, closing)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # uvicorn cancels streams still open when server.shutdown_grace_s runs out and
            # closes the loop right after: leave without another await (or a traceback).
            for task in tasks:
                task.cancel()
            return
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if not streaming.cancelled() and isinstance(streaming.exception(), TimeoutError):
            # The client took nothing for send_timeout_s: leave without completing the
            # response, so the server closes the connection instead of waiting on it.
            log.info("dashboard: a client read nothing for %.0f s, disconnected",
                     self.send_timeout_s)
            metrics.DASHBOARD_STALLED.inc()
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await send({"type": "http.response.body", "body": b"", "more_body": False})


__all__ = ["DashboardHub", "EventStream", "merge_diff", "merge_patch", "prune", "sse_event"]
