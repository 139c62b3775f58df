"""A PTY session's bytes over HTTP: the controlling client's WebSocket and the observers' SSE
stream (the routes that reach them, and the sessions' lifecycle: oven/http/_pty.py).

WebSocket: binary frames carry raw bytes both ways; text frames carry JSON control messages
(`{"type": "resize", "cols": 120, "rows": 40}`, `{"type": "ack", "bytes": N}` where N is the
output offset rendered so far); a control message of any other shape closes the socket with
1007. The socket is read only after the previous input frame was taken by the session's input
buffer, so a paste larger than the buffer pushes back on the sender over TCP; nothing is
dropped. Every send has a timeout, the SSE observers' too.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncGenerator
from typing import Annotated, Any, Literal

import pykka
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from oven.actors.pty_session import Ack, Attach, Detach, Next, Resize, Write
from oven.actors.runtime import ask_async
from oven.pty import ClientDetached, Closed, Output, PtySettings, Resync, SessionEnded

log = logging.getLogger(__name__)

WRITE_TIMEOUT_S = 300.0  # a child that reads nothing for this long ends the paste with an error


class AckControl(BaseModel):
    type: Literal["ack"]
    bytes: int = Field(ge=0)


class ResizeControl(BaseModel):
    type: Literal["resize"]
    cols: int = Field(ge=10, le=1000)
    rows: int = Field(ge=5, le=500)


# pydantic's own JSON parser: nesting past its depth limit is a validation error, not a
# RecursionError out of the json module.
_CONTROL: TypeAdapter[AckControl | ResizeControl] = TypeAdapter(
    Annotated[AckControl | ResizeControl, Field(discriminator="type")])


async def serve_controller(websocket: WebSocket, ref: pykka.ActorRef[Any], name: str,
                           settings: PtySettings) -> None:
    """The controlling client's socket on session `ref` (named `name`), until either side ends;
    the socket is accepted here and always closed."""
    await websocket.accept()

    # From offset 0: the controller sees everything the ring still holds (a shell's first
    # prompt printed before it connected) and its acks count from the same origin as the
    # session's offsets; if the ring has wrapped, it starts with a resync.
    client_id: str = await ask_async(ref, Attach(controlling=True, from_offset=0), timeout=5)

    async def pump_input() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                data: bytes = message["bytes"]
                if len(data) > settings.max_frame_bytes:
                    await websocket.close(code=1009, reason="frame over pty.max_frame_bytes")
                    return
                # Not reading the next frame until this one is taken is the backpressure.
                await ask_async(ref, Write(data), timeout=WRITE_TIMEOUT_S)
            elif message.get("text") is not None:
                try:
                    control = _CONTROL.validate_json(message["text"])
                except ValidationError as exc:
                    error = exc.errors()[0]
                    where = ".".join(str(p) for p in error["loc"]) or "message"
                    reason = f"control message: {where}: {error['msg']}"
                    await websocket.close(code=1007, reason=reason[:120])
                    return
                if isinstance(control, AckControl):
                    ref.tell(Ack(client_id, control.bytes))
                else:
                    ref.tell(Resize(control.cols, control.rows))

    async def pump_output() -> None:
        while True:
            try:
                item = await ask_async(ref, Next(client_id, 1.0), timeout=10)
            except TimeoutError:
                continue  # nothing printed for a second: an idle terminal stays connected
            if isinstance(item, Output):
                async with asyncio.timeout(settings.send_timeout_s):
                    await websocket.send_bytes(item.data)
            elif isinstance(item, Resync):
                async with asyncio.timeout(settings.send_timeout_s):
                    await websocket.send_text(json.dumps(
                        {"type": "resync", "offset": item.offset, "lost": item.lost_bytes}))
            elif isinstance(item, Closed):
                async with asyncio.timeout(settings.send_timeout_s):
                    await websocket.send_text(json.dumps(
                        {"type": "exit", "status": item.exit_status, "offset": item.offset}))
                return

    reading = asyncio.create_task(pump_input())
    writing = asyncio.create_task(pump_output())
    try:
        await asyncio.wait([reading, writing], return_when=asyncio.FIRST_COMPLETED)
        if reading.done() and isinstance(reading.exception(), SessionEnded):
            # The child exited mid-input: still deliver its last output and the exit notice.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(settings.close_timeout_s + 5):
                    await asyncio.shield(writing)
        for task in (reading, writing):
            error = task.exception() if task.done() and not task.cancelled() else None
            if error is not None and not isinstance(
                    error, WebSocketDisconnect | ClientDetached | SessionEnded | TimeoutError):
                log.info("pty %s websocket ended: %r", name, error)
    finally:
        for task in (reading, writing):
            task.cancel()
        with contextlib.suppress(Exception):
            ref.tell(Detach(client_id))
        with contextlib.suppress(Exception):
            await websocket.close()


async def observer_events(ref: pykka.ActorRef[Any], client_id: str) -> AsyncGenerator[bytes, None]:
    """SSE frames of what session `ref` prints for observer `client_id` (event id = the byte
    offset after the frame, data = base64); detaches the observer when closed."""
    try:
        while True:
            try:
                item = await ask_async(ref, Next(client_id, 1.0), timeout=10)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if isinstance(item, Output):
                end = item.offset + len(item.data)
                payload = base64.b64encode(item.data).decode()
                yield f"id: {end}\nevent: output\ndata: {payload}\n\n".encode()
                ref.tell(Ack(client_id, end))  # an observer acks what it was sent
            elif isinstance(item, Resync):
                yield f"id: {item.offset}\nevent: resync\ndata: {item.lost_bytes}\n\n".encode()
            elif isinstance(item, Closed):
                yield f"event: exit\ndata: {item.exit_status}\n\n".encode()
                return
    except ClientDetached:
        return
    finally:
        with contextlib.suppress(Exception):
            ref.tell(Detach(client_id))


def closing_event(request: Request) -> asyncio.Event:
    """One event per app, set when the server starts stopping: uvicorn's graceful shutdown
    waits for open responses, and an observer's stream would otherwise last out the grace."""
    closing: asyncio.Event | None = getattr(request.app.state, "pty_closing", None)
    if closing is None:
        closing = request.app.state.pty_closing = asyncio.Event()
        request.app.state.stream_closers.append(closing.set)
    return closing


class ObserverStream(Response):
    """text/event-stream of `events`, ended by the client going away or by a send that takes
    longer than `send_timeout_s`: a client that reads nothing is let go (its events generator
    closed, so it detaches from the session) instead of holding a task forever. When `closing`
    is set (the server is stopping) the stream ends at once as a complete response."""

    def __init__(self, events: AsyncGenerator[bytes, None], *, send_timeout_s: float,
                 closing: asyncio.Event | None = None) -> None:
        self.events = events
        self.send_timeout_s = send_timeout_s
        self.closing = closing or asyncio.Event()
        self.status_code = 200
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-store"),
                   (b"x-accel-buffering", b"no")]

        started = False

        async def stream() -> None:
            nonlocal started
            async with asyncio.timeout(self.send_timeout_s):
                await send({"type": "http.response.start", "status": 200, "headers": headers})
            started = True
            async for chunk in self.events:
                async with asyncio.timeout(self.send_timeout_s):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})

        async def until_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        streaming = asyncio.create_task(stream())
        watching = asyncio.create_task(until_disconnect())
        closing = asyncio.create_task(self.closing.wait())
        tasks = (streaming, watching, closing)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            # Not awaited when we are cancelled ourselves (shutdown): the tasks end on their own.
            with contextlib.suppress(BaseException):
                await asyncio.gather(*tasks, return_exceptions=True)
                await self.events.aclose()
        error = None if streaming.cancelled() else streaming.exception()
        gone = watching.done() and not watching.cancelled()  # the client disconnected
        if error is None and started and not gone:
            # The session ended or the server is stopping: a complete response, not a cut one.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(min(1.0, self.send_timeout_s)):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if isinstance(error, TimeoutError):
            # Leave without completing the response: the server closes the connection.
            log.info("pty observer read nothing for %.0f s, let go", self.send_timeout_s)
        elif error is not None:
            log.info("pty observer stream ended: %r", error)
