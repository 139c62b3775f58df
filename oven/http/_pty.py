"""PTY routes: who may reach sessions, starting, listing and ending them, and the endpoints of
the controlling client's WebSocket and the observers' SSE stream (what flows on those two:
oven/http/_pty_io.py).
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from oven.actors.pty_session import Attach, CloseSession, PtySessionActor, SessionInfo
from oven.actors.runtime import ask_async
from oven.http._auth import require_token
from oven.http._errors import ApiError, json_body
from oven.http._openapi import operation
from oven.http._pty_io import ObserverStream, closing_event, observer_events, serve_controller
from oven.pty import PtySettings
from oven.supervisor import AddChild, ChildSpec, GetStatus, Restart
from oven.system import ActorSystem


class SessionRequest(BaseModel):
    model_config = {"extra": "forbid"}

    profile: str = Field(description="A profile name from [pty.profiles].")
    cols: int = Field(80, ge=10, le=1000)
    rows: int = Field(24, ge=5, le=500)


class SessionCreated(BaseModel):
    id: str
    ws_url: str
    stream_url: str


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
    body = SessionRequest.model_validate(await json_body(request))
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
    await serve_controller(websocket, ref, name, settings)


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
    return ObserverStream(observer_events(ref, client_id), send_timeout_s=settings.send_timeout_s,
                          closing=closing_event(request))


def pty_routes() -> list[BaseRoute]:
    return [
        Route("/pty/sessions", create_session, methods=["POST"]),
        Route("/pty/sessions", list_sessions, methods=["GET"]),
        Route("/pty/sessions/{session_id}", delete_session, methods=["DELETE"]),
        Route("/pty/sessions/{session_id}/stream", session_stream, methods=["GET"]),
        WebSocketRoute("/pty/sessions/{session_id}/ws", session_socket),
    ]
