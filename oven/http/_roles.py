"""Routes as an instance's `[cluster] role` serves them.

A `worker` serves only what operators and probes need (/health, /ready, /metrics, /status):
no public route, so a worker behind no load balancer exposes nothing a client could use. An
`api` instance serves every public route but one: it runs no bakes, since a bake's tape is
unpacked on the disk of the instance that received it and encoded by that instance's ffmpeg,
which an `api` instance does not start.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from oven.http._errors import error_response
from oven.http._ops import ROUTES as OPS_ROUTES

WORKER_PATHS = frozenset({"/health", "/ready", "/metrics", "/status"})


def worker_ops_routes() -> list[BaseRoute]:
    return [r for r in OPS_ROUTES if isinstance(r, Route) and r.path in WORKER_PATHS]


async def bakes_not_here(request: Request) -> Response:
    # Answered before the body is read: the archive may be hundreds of MB.
    return error_response(
        404, 'this instance runs cluster.role = "api", which runs no bakes (a bake is '
             'unpacked and encoded where it is received); send bakes to an instance with '
             'cluster.role = "all"', code="not_served")


def api_refusals() -> list[BaseRoute]:
    """Routes an `api` instance answers with a refusal; listed before the routes they cover."""
    return [Route("/bakes", bakes_not_here, methods=["POST"])]
