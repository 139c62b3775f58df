"""PTY routes: sessions over HTTP, a WebSocket for the controlling client, SSE for observers.

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
import uuid
from collections.abc import AsyncGenerator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from oven.actors.pty_session import (
    Ack,
    Attach,
    CloseSession,
    Detach,
    Next,
    PtySessionActor,
    Resize,
    SessionInfo,
    Write,
)
from oven.actors.runtime import ask_async
from oven.http._auth import require_token
from oven.http._errors import ApiError
from oven.http._openapi import operation
from oven.pty import ClientDetached, Closed, Output, PtySettings, Resync, SessionEnded
from oven.supervisor import AddChild, ChildSpec, GetStatus, Restart
from oven.system import ActorSystem

log = logging.getLogger(__name__)

WRITE_TIMEOUT_S = 300.0  # a child that reads nothing for this long ends the paste with an error


class SessionRequest(BaseModel):
    model_config = {"extra": "forbid"}

    profile: str = Field(description="A profile name from [pty.profiles].")
    cols: int = Field(80, ge=10, le=1000)
    rows: int = Field(24, ge=5, le=500)


class SessionCreated(BaseModel):
    id: str
    ws_url: str
    stream_url: str


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


def _system(conn: HTTPConnection) -> ActorSystem:
    system: ActorSystem = conn.app.state.system
    return system


def _allowed(conn: HTTPConnection, *, allow_query: bool = False) -> PtySettings:
    settings = _system(conn).settings.pty
    if not settings.enabled:
        raise ApiError(
            403, "PTY sessions are off: set [pty] enabled = true and a token", code="disabled"
        )
    require_token(conn, settings.token, what="PTY", setting="pty.token", allow_query=allow_query)
    return settings


def _session_name(session_id: str) -> str:
    if not session_id.startswith("pty-") or not session_id[4:].isalnum():
        raise ApiError(404, f"no PTY session {session_id!r}")
    return session_id


@operation(
    "Start a terminal session from a configured profile",
    body=SessionRequest,
    responses={201: SessionCreated},
    tags=["pty"],
    secured=True,
)
async def create_session(request: Request) -> Response:
    settings = _allowed(request)
    try:
        data = json.loads(await request.body())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "body is not valid JSON: nested too deeply") from None
    body = SessionRequest.model_validate(data)
    profile = settings.profiles.get(body.profile)
    if profile is None:
        raise ApiError(
            422,
            f"profile: {body.profile!r} is not configured; profiles are "
            f"{', '.join(sorted(settings.profiles)) or 'none'}",
        )
    system = _system(request)
    running = await system.ask_async("pty", GetStatus())
    if len(running) >= settings.max_sessions:
        raise ApiError(
            429, f"{len(running)} PTY sessions already run (pty.max_sessions)", retry_after_s=5
        )
    session_id = f"pty-{uuid.uuid4().hex[:16]}"
    if settings.record_dir is not None:  # relative paths live under server.data_dir
        record_dir = system.settings.resolve(settings.record_dir)
        record_dir.mkdir(parents=True, exist_ok=True)
        settings = settings.model_copy(update={"record_dir": record_dir})

    def start(ctx: Any) -> Any:
        return PtySessionActor.start(
            ctx,
            profile_name=body.profile,
            profile=profile,
            cols=body.cols,
            rows=body.rows,
            settings=settings,
        )

    spec = ChildSpec(
        id=session_id,
        start=start,
        restart=Restart.TEMPORARY,
        mailbox_capacity=256,
        start_timeout_s=10,
        shutdown_timeout_s=10,
    )
    await system.ask_async("pty", AddChild(spec), timeout=20)
    return JSONResponse(
        {
            "id": session_id,
            "ws_url": f"/pty/sessions/{session_id}/ws",
            "stream_url": f"/pty/sessions/{session_id}/stream",
        },
        status_code=201,
    )


@operation("Terminal sessions", tags=["pty"], secured=True)
async def list_sessions(request: Request) -> Response:
    _allowed(request)
    system = _system(request)
    sessions = []
    for child in await system.ask_async("pty", GetStatus()):
        with contextlib.suppress(Exception):  # one that just exited is simply not listed
            sessions.append(await system.ask_async(child["name"], SessionInfo()))
    return JSONResponse({"sessions": sessions})


@operation("End a terminal session", tags=["pty"], secured=True)
async def delete_session(request: Request) -> Response:
    _allowed(request)
    name = _session_name(request.path_params["session_id"])
    system = _system(request)
    try:
        await system.ask_async(name, CloseSession(), timeout=20)
    except Exception as exc:
        raise ApiError(404, f"no PTY session {name!r}") from exc
    return JSONResponse({"id": name, "closed": True})


async def session_socket(websocket: WebSocket) -> None:
    try:
        settings = _allowed(websocket, allow_query=True)
        name = _session_name(websocket.path_params["session_id"])
        system = _system(websocket)
        ref = system.ref(name)
    except Exception as exc:
        await websocket.close(
            code=4403 if isinstance(exc, ApiError) else 4404, reason=str(exc)[:120]
        )
        return
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


@operation(
    "Read-only output stream (SSE; event id = byte offset, data = base64)",
    responses={200: "text/event-stream"},
    tags=["pty"],
    secured=True,
)
async def session_stream(request: Request) -> Response:
    settings = _allowed(request, allow_query=True)
    name = _session_name(request.path_params["session_id"])
    system = _system(request)
    ref = system.ref(name)

    last = request.headers.get("last-event-id")
    client_id: str = await ask_async(
        ref,
        Attach(controlling=False, from_offset=int(last) if last and last.isdigit() else None),
        timeout=5,
    )

    async def events() -> AsyncGenerator[bytes, None]:
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

    return ObserverStream(events(), send_timeout_s=settings.send_timeout_s,
                          closing=_closing(request))


def _closing(request: Request) -> asyncio.Event:
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


def pty_routes() -> list[BaseRoute]:
    return [
        Route("/pty/sessions", create_session, methods=["POST"]),
        Route("/pty/sessions", list_sessions, methods=["GET"]),
        Route("/pty/sessions/{session_id}", delete_session, methods=["DELETE"]),
        Route("/pty/sessions/{session_id}/stream", session_stream, methods=["GET"]),
        WebSocketRoute("/pty/sessions/{session_id}/ws", session_socket),
    ]
