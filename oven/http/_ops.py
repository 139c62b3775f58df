"""Operational routes: liveness, readiness, status, metrics, OpenAPI and admin reload."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oven import __version__
from oven.actors.runtime import InjectCrash
from oven.config import ConfigError
from oven.http._auth import require_token
from oven.http._errors import ApiError, error_response
from oven.http._openapi import build_openapi, operation
from oven.supervisor import ActorUnavailable
from oven.system import ActorSystem


class HealthOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    ready: bool
    reasons: list[str]


class ActorOut(BaseModel):
    name: str
    state: str
    restarts: int
    last_exit: str | None
    last_exit_detail: str | None
    up_since: float | None
    mailbox_depth: int
    mailbox_capacity: int | None


class StatusOut(BaseModel):
    version: str
    healthy: bool
    escalation: str | None
    ready_reasons: list[str]
    config_file: str | None
    actors: list[ActorOut]
    sections: dict[str, Any]


class ReloadOut(BaseModel):
    applied: list[str]
    restart_required: list[str]


def system_of(request: Request) -> ActorSystem:
    system: ActorSystem = request.app.state.system
    return system


@operation(
    "Liveness: the process and its supervision tree are alive",
    responses={200: HealthOut},
    tags=["ops"],
)
async def health(request: Request) -> Response:
    system = system_of(request)
    if not system.healthy:
        why = system.escalation_reason or "supervision tree is down"
        return error_response(503, why, code="unhealthy")
    return JSONResponse({"status": "ok"})


@operation(
    "Readiness: whether a new capture would start now, with reasons when not",
    responses={200: ReadyOut},
    tags=["ops"],
)
async def ready(request: Request) -> Response:
    reasons = system_of(request).not_ready_reasons()
    if reasons:
        return JSONResponse(
            {"ready": False, "reasons": reasons}, status_code=503, headers={"Retry-After": "2"}
        )
    return JSONResponse({"ready": True, "reasons": []})


@operation(
    "Actors, their state, restarts and mailbox depths", responses={200: StatusOut}, tags=["ops"]
)
async def status(request: Request) -> Response:
    system = system_of(request)
    # GetStatus is a blocking ask to the root supervisor: keep it off the event loop.
    actors = await asyncio.to_thread(system.status)
    sections = {}
    for name, provider in request.app.state.status_sections.items():
        sections[name] = await provider()
    return JSONResponse(
        {
            "version": __version__,
            "healthy": system.healthy,
            "escalation": system.escalation_reason,
            "ready_reasons": system.not_ready_reasons(),
            "config_file": str(system.config.path) if system.config.path else None,
            "actors": actors,
            "sections": sections,
        }
    )


@operation(
    "Prometheus metrics (text exposition format)", responses={200: "text/plain"}, tags=["ops"]
)
async def metrics(request: Request) -> Response:
    token = system_of(request).settings.server.metrics_token
    if token is not None:
        require_token(request, token, what="metrics", setting="server.metrics_token")
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> Response:
    return JSONResponse(build_openapi(request.app.routes, title="oven", version=__version__))


@operation(
    "Reload the config file; live keys apply at once",
    responses={200: ReloadOut},
    tags=["admin"],
    secured=True,
)
async def admin_reload(request: Request) -> Response:
    system = system_of(request)
    require_token(
        request, system.settings.server.admin_token, what="admin", setting="server.admin_token"
    )
    try:
        result = await asyncio.to_thread(system.reload)
    except ConfigError as exc:
        raise ApiError(422, f"config not reloaded: {exc}", code="invalid_config") from None
    return JSONResponse(result)


@operation("Crash an actor through its real crash path (admin; server.fault_injection)",
           tags=["admin"], secured=True)
async def admin_crash(request: Request) -> Response:
    system = system_of(request)
    require_token(request, system.settings.server.admin_token, what="admin",
                  setting="server.admin_token")
    if not system.settings.server.fault_injection:
        raise ApiError(403, "fault injection is off: set server.fault_injection = true",
                       code="disabled")
    actor = request.path_params["actor"]
    try:
        system.tell(actor, InjectCrash(f"crash injected over HTTP into {actor}"))
    except ActorUnavailable as exc:
        raise ApiError(404, str(exc)) from None
    return JSONResponse({"actor": actor, "crashed": True})


ROUTES = [
    Route("/health", health, methods=["GET"]),
    Route("/ready", ready, methods=["GET"]),
    Route("/status", status, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/admin/reload", admin_reload, methods=["POST"]),
    Route("/admin/faults/{actor}/crash", admin_crash, methods=["POST"]),
]
