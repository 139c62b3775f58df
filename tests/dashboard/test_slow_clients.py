"""DashboardHub over real TCP sockets: a client that stops reading costs one state, not a queue.

The server side writes SSE frames to a real loopback socket with small kernel buffers, so a
client that does not read really blocks the sender (no fake `send`); the blob in each state makes
the buffers fill in a fraction of a second instead of minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from oven.http._dashboard_hub import DashboardHub, EventStream, merge_patch

TICK_S = 0.02
HIGH_WATER = 16 * 1024
BLOB_CHARS = 8 * 1024


class ChangingState:
    """The producer's source: a new state on every gather until frozen."""

    def __init__(self) -> None:
        self.n = 0
        self.frozen = False

    async def __call__(self) -> dict[str, Any]:
        if not self.frozen:
            self.n += 1
        return {"n": self.n, "blob": os.urandom(BLOB_CHARS // 2).hex() if not self.frozen
                else "frozen", "jobs": {f"job-{self.n % 5}": {"stage": "capture"}}}


@dataclass
class Served:
    outcome: asyncio.Future[BaseException | None]
    max_buffer: list[int] = field(default_factory=lambda: [0])
    max_event: list[int] = field(default_factory=lambda: [0])


@contextlib.asynccontextmanager
async def hub_server(hub: DashboardHub, *, send_timeout_s: float) -> AsyncIterator[
        tuple[int, list[Served]]]:
    served: list[Served] = []
    loop = asyncio.get_running_loop()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        writer.transport.set_write_buffer_limits(high=HIGH_WATER)
        record = Served(loop.create_future())
        served.append(record)

        async def send(data: bytes) -> None:
            # What uvicorn does: wait for room when the transport is over its high water mark,
            # then write the whole frame.
            await writer.drain()
            writer.write(data)
            record.max_event[0] = max(record.max_event[0], len(data))
            record.max_buffer[0] = max(record.max_buffer[0],
                                       writer.transport.get_write_buffer_size())

        # Like EventStream: the stream ends when the client hangs up or a send stalls.
        streaming = asyncio.create_task(
            hub.stream(send, send_timeout_s=send_timeout_s, min_interval_s=TICK_S))
        hangup = asyncio.create_task(reader.read())
        await asyncio.wait({streaming, hangup}, return_when=asyncio.FIRST_COMPLETED)
        for task in (streaming, hangup):
            task.cancel()
        await asyncio.gather(streaming, hangup, return_exceptions=True)
        record.outcome.set_result(None if streaming.cancelled() else streaming.exception())
        writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], served
    finally:
        server.close()
        await server.wait_closed()


async def connect(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return sock


class EventReader:
    """Reads SSE frames from a socket and applies them as the page does."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.events: list[tuple[str, int, dict[str, Any]]] = []
        self.state: dict[str, Any] | None = None

    async def read_some(self) -> None:
        chunk = await asyncio.get_running_loop().sock_recv(self.sock, 65536)
        assert chunk, "server closed the stream"
        self.buffer += chunk
        while b"\n\n" in self.buffer:
            frame, self.buffer = self.buffer.split(b"\n\n", 1)
            fields = dict(line.split(": ", 1) for line in frame.decode().split("\n"))
            body = json.loads(fields["data"])
            self.events.append((fields["event"], int(fields["id"]), body))
            self.state = body if fields["event"] == "snapshot" else merge_patch(self.state, body)

    async def until_version(self, version: int, *, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not self.events or self.events[-1][1] < version:
                await self.read_some()


async def freeze(source: ChangingState, hub: DashboardHub) -> None:
    """Freeze the source and wait until the hub has published its last state, so a reader
    caught up with hub.version has every state there will be."""
    source.frozen = True
    async with asyncio.timeout(10):
        while (hub.state or {}).get("blob") != "frozen":
            await asyncio.sleep(TICK_S)


def dropped() -> float:
    return REGISTRY.get_sample_value("oven_dashboard_deltas_dropped_total") or 0.0


async def test_a_client_that_never_reads_is_cut_off_at_the_send_timeout_without_piling_up(
) -> None:
    source = ChangingState()
    hub = DashboardHub(source, tick_s=TICK_S)
    async with hub_server(hub, send_timeout_s=1.0) as (port, served):
        stuck = await connect(port)
        reader = EventReader(await connect(port))
        async with asyncio.timeout(10):
            while len(served) < 2:
                await asyncio.sleep(0.01)
        stuck_side = served[0]
        # The other client keeps receiving while the stuck one blocks its sender.
        seen_before = len(reader.events)
        async with asyncio.timeout(15):
            while not stuck_side.outcome.done():
                await reader.read_some()
        assert isinstance(stuck_side.outcome.result(), TimeoutError)
        assert len(reader.events) - seen_before >= 20, "the reading client was held up"
        # At most the transport's high-water mark plus the one frame written when it had room.
        assert stuck_side.max_buffer[0] <= HIGH_WATER + stuck_side.max_event[0], stuck_side
        assert hub.clients == 1  # the stuck client is gone; the reader is still connected
        await freeze(source, hub)
        await reader.until_version(hub.version, timeout=5)
        assert reader.state == hub.state
        stuck.close()
        reader.sock.close()
    async with asyncio.timeout(5):
        while hub.clients:
            await asyncio.sleep(0.01)


async def test_a_client_that_falls_behind_gets_one_merged_delta_when_it_reads_again() -> None:
    source = ChangingState()
    hub = DashboardHub(source, tick_s=TICK_S)
    before = dropped()
    async with hub_server(hub, send_timeout_s=30) as (port, served):
        reader = EventReader(await connect(port))
        await reader.until_version(3, timeout=10)
        # Stop reading while the producer publishes at least 20 states, then freeze the source.
        paused_at = hub.version
        async with asyncio.timeout(30):
            while hub.version - paused_at < 20:
                await asyncio.sleep(0.01)
        await freeze(source, hub)
        published = hub.version - paused_at
        events_before = len(reader.events)
        await reader.until_version(hub.version, timeout=10)
        after_pause = reader.events[events_before:]
        # What was stuck in the buffers, then a single merged delta up to the newest state.
        assert len(after_pause) <= 8, [(e, v) for e, v, _ in after_pause]
        assert published >= 20
        assert reader.state == hub.state
        assert dropped() - before >= published - len(after_pause) - 8
        assert served[0].max_buffer[0] <= HIGH_WATER + served[0].max_event[0]
        reader.sock.close()


async def test_the_producer_runs_only_while_someone_listens_and_unchanged_states_wake_nobody(
) -> None:
    calls = 0
    state = {"a": 1}

    async def gather() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return dict(state)

    hub = DashboardHub(gather, tick_s=TICK_S)
    await asyncio.sleep(5 * TICK_S)
    assert calls == 0  # nobody connected: the actors are not asked
    sent: list[bytes] = []

    async def send(data: bytes) -> None:
        sent.append(data)

    first = asyncio.create_task(hub.stream(send, min_interval_s=TICK_S))
    second = asyncio.create_task(hub.stream(send, min_interval_s=TICK_S))
    async with asyncio.timeout(5):
        while len(sent) < 2:
            await asyncio.sleep(0.01)
    await asyncio.sleep(10 * TICK_S)
    assert hub.version == 1 and len(sent) == 2  # two snapshots, no deltas for an unchanged state
    assert all(frame.startswith(b"event: snapshot\n") for frame in sent)
    gathers_with_two = calls
    assert gathers_with_two <= 15  # one producer for both clients, not one each
    state["a"] = 2
    async with asyncio.timeout(5):
        while len(sent) < 4:
            await asyncio.sleep(0.01)
    assert sent[2] == sent[3] == b'event: delta\nid: 2\ndata: {"a":2}\n\n'
    for task in (first, second):
        task.cancel()
    await asyncio.gather(first, second, return_exceptions=True)
    assert hub.clients == 0
    calls_at_stop = calls
    await asyncio.sleep(5 * TICK_S)
    assert calls == calls_at_stop  # the last client left: the producer stopped


async def test_closing_the_hub_ends_every_open_stream_as_a_complete_response() -> None:
    """Under a real uvicorn: what a server stopping would call instead of waiting out its grace."""
    hub = DashboardHub(ChangingState(), tick_s=0.1)

    async def events(request: Request) -> EventStream:
        return EventStream(hub)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/e", events)]),
                                           log_config=None, lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            async with asyncio.timeout(10):
                while not server.started:
                    await asyncio.sleep(0.02)
            async with http.stream("GET", f"http://127.0.0.1:{port}/e") as response:
                kinds = []
                async with asyncio.timeout(10):
                    async for line in response.aiter_lines():
                        if line.startswith("event: "):
                            kinds.append(line[7:])
                            if len(kinds) == 3:
                                hub.close()
                # The loop ended because the response was complete, not by a timeout.
                assert kinds[:3] == ["snapshot", "delta", "delta"]
        async with asyncio.timeout(5):
            while hub.clients:
                await asyncio.sleep(0.02)
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
        sock.close()
