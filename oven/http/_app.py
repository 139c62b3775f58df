"""The Starlette application: routes from each room, JSON errors, a request body limit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oven.http._edge import with_edge
from oven.http._errors import EXCEPTION_HANDLERS, ApiError, error_response
from oven.http._ops import ROUTES as OPS_ROUTES
from oven.http._ops import health, ready
from oven.system import ActorSystem

StatusSection = Callable[[], Awaitable[Any]]
# Streamed to disk under their own limit (bakes.max_archive_bytes, oven/http/_bakes.py).
UNLIMITED_PATHS = frozenset({"/bakes"})


class BodyLimit:
    """Refuse bodies over the limit with 413 before they are read into memory.

    A declared Content-Length is checked up front. A chunked body has none, so its bytes are
    counted as the route reads them and the read that passes the limit raises BodyTooLarge: an
    ApiError, so the app's own error handling answers the 413 (anything else raised from inside
    a route would reach the catch-all handler and answer 500).
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            response = error_response(413, _too_large(self.limit))
            await response(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watched)
        except BodyTooLarge:
            # Only reached when a body is read outside the routes' error handling (e.g. by a
            # middleware); once an answer has started, nothing else can be sent.
            if started:
                raise
            await error_response(413, _too_large(self.limit))(scope, receive, send)


class Probes:
    """`GET /health` and `GET /ready` answered by their own endpoints without the app's stack.

    A load balancer drops an instance whose probes are slow; under load the HTTP loop shares
    two cores and the GIL with the browser and the actors, so a probe should cost the loop as
    few steps as possible. Same endpoints, same bodies and headers; the rate limit and CORS
    still wrap it. Should an endpoint raise, the request goes through the full stack instead,
    whose error handling answers it.
    """

    ENDPOINTS: dict[str, Callable[[Request], Awaitable[Response]]] = {
        "/health": health, "/ready": ready}

    def __init__(self, app: ASGIApp, starlette: Starlette) -> None:
        self.app = app
        self.starlette = starlette

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = (self.ENDPOINTS.get(scope["path"])
                    if scope["type"] == "http" and scope["method"] == "GET" else None)
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        try:
            response = await endpoint(Request({**scope, "app": self.starlette}, receive))
        except Exception:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large(limit))


def _too_large(limit: int) -> str:
    return f"request body over {limit} bytes (server.max_body_bytes)"


def create_app(
    system: ActorSystem,
    *,
    routes: list[BaseRoute] | None = None,
    ops_routes: list[BaseRoute] | None = None,
    status_sections: dict[str, StatusSection] | None = None,
    lifespan: Any = None,
    stream_closers: list[Callable[[], None]] | None = None,
) -> ASGIApp:
    """The app. Long-lived streams register a closer in `stream_closers` (app.state), called on
    the server's loop when it starts stopping, so a graceful shutdown need not wait for them.
    `ops_routes` replaces the operational routes (a worker serves only some of them)."""
    app = Starlette(
        routes=[*(OPS_ROUTES if ops_routes is None else ops_routes), *(routes or [])],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.system = system
    app.state.status_sections = status_sections or {}
    app.state.stream_closers = stream_closers if stream_closers is not None else []
    # Read at request time, so a reload changes the rate limit without a restart.
    return with_edge(Probes(BodyLimit(app, system.settings.server.max_body_bytes), app),
                     lambda: system.settings.edge)
