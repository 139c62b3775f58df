"""The old service's grab housekeeping: POST /grab-cleanup and /grab-clear (admin), both
oven's cancel; GET /api/frozen and DELETE /api/frozen/{piece} (admin), oven's freezes in the
old shapes."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from oven.actors.grab_queue import GrabStatus, GrabView, QueueStatus
from oven.actors.store import StoreClient
from oven.compat._grab_answers import system_of
from oven.grabs import PIECE_NAME
from oven.http import ApiError, GrabClient, operation, require_token


def _require_admin(request: Request) -> None:
    require_token(request, system_of(request).settings.server.admin_token, what="admin",
                  setting="server.admin_token")


def _store(request: Request) -> StoreClient:
    system = system_of(request)
    return StoreClient(system.registry, timeout_s=system.settings.supervisor.ask_timeout_s)


async def _grabs(request: Request) -> tuple[list[GrabView], list[GrabView]]:
    """(running here, queued in the shared queue), as /grab-status shows them."""
    answer = await system_of(request).ask_async("grab_queue", QueueStatus())
    status = GrabStatus.model_validate(answer)
    return status.running, [view for views in status.queued.values() for view in views]


async def _cancel(request: Request, views: list[GrabView]) -> tuple[list[str], list[str]]:
    """Cancel each grab: (cancelled ids, ids that could not be: already final, or running in
    another instance, which only that instance can stop)."""
    client = GrabClient(system_of(request))
    done, left = [], []
    for view in views:
        if view.id is None:
            continue
        try:
            await client.cancel(view.id)
        except ApiError:
            left.append(view.id)
        else:
            done.append(view.id)
    return done, left


@operation("Cancel grabs queued or running for longer than [compat.grabs] stale_after_s since "
           "admission (admin)", tags=["compat", "admin"], secured=True)
async def grab_cleanup(request: Request) -> Response:
    _require_admin(request)
    stale_after_s = system_of(request).settings.compat.grabs.stale_after_s
    running, queued = await _grabs(request)
    since = time.time() - stale_after_s
    stale = [v for v in [*running, *queued] if v.created_at is not None and v.created_at < since]
    done, left = await _cancel(request, stale)
    return JSONResponse({"success": True, "cleaned": len(done),
                         "remaining": len(running) + len(queued) - len(done),
                         "cancelled": done, "not_cancelled": left,
                         "stale_after_s": stale_after_s})


@operation("Cancel every queued grab and every grab running here (admin)",
           tags=["compat", "admin"], secured=True)
async def grab_clear(request: Request) -> Response:
    _require_admin(request)
    running, queued = await _grabs(request)
    done_running, left_running = await _cancel(request, running)
    done_queued, left_queued = await _cancel(request, queued)
    return JSONResponse({"success": True, "cleared": len(done_running),
                         "queueCleared": len(done_queued),
                         "cancelled": [*done_running, *done_queued],
                         "not_cancelled": [*left_running, *left_queued]})


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


@operation("Pieces frozen after repeated failures, in the old service's shape",
           tags=["compat"])
async def list_frozen(request: Request) -> Response:
    now = time.time()
    frozen: list[dict[str, Any]] = [
        {"piece": f.piece, "attempts": f.failures, "firstDetected": _ms(f.frozen_at),
         "lastAttempt": _ms(f.frozen_at), "error": f.reason or "failed repeatedly",
         "frozenUntil": _ms(f.frozen_until)}
        for f in await _store(request).list_frozen() if f.frozen_until > now]
    frozen.sort(key=lambda f: f["lastAttempt"] or 0, reverse=True)
    return JSONResponse({"frozen": frozen})


@operation("Unfreeze a piece (admin); like the old service, success whether or not it was "
           "frozen ('unfrozen' says which)", tags=["compat", "admin"], secured=True)
async def unfreeze(request: Request) -> Response:
    _require_admin(request)
    piece = request.path_params["piece"]
    if not PIECE_NAME.match(piece):
        raise ApiError(422, f"piece: not a piece name or a KidLisp $code: {piece[:80]!r}")
    unfrozen = await _store(request).unfreeze(piece)
    return JSONResponse({"success": True, "piece": piece, "unfrozen": unfrozen})


def routes() -> list[BaseRoute]:
    return [
        Route("/grab-cleanup", grab_cleanup, methods=["POST"]),
        Route("/grab-clear", grab_clear, methods=["POST"]),
        Route("/api/frozen", list_frozen, methods=["GET"]),
        Route("/api/frozen/{piece}", unfreeze, methods=["DELETE"]),
    ]
