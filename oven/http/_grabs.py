"""Grab routes: submit, inspect, wait for, cancel and fetch captures; icons and previews."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from oven.actors.grab_queue import GrabStatus, GrabView, QueueStatus, cancel_token_matches
from oven.actors.store import StoreClient
from oven.capture import pieces_dir
from oven.encode import Format
from oven.grabs import RESULTS_PATH, GrabRequest
from oven.http._auth import holds_token, require_token
from oven.http._errors import ApiError, json_object
from oven.http._grab_client import Accepted, GrabClient, validated
from oven.http._openapi import operation
from oven.jobs import JobState
from oven.system import ActorSystem

CANCEL_HEADER = "X-Cancel-Token"


class GrabAccepted(BaseModel):
    id: str | None
    state: str
    status_url: str | None
    result_url: str | None
    position: int | None = None
    eta_s: float | None = None
    cached: bool = False
    attached: bool = False
    cancel_token: str | None = Field(
        None, description="Cancels this job (DELETE /grabs/{id} with X-Cancel-Token or "
        "?token=). Only the submission that created the job gets one; an attached or cached "
        "answer has none.")


def _system(request: Request) -> ActorSystem:
    system: ActorSystem = request.app.state.system
    return system


def _client(request: Request) -> GrabClient:
    return GrabClient(_system(request))


def _accepted(view: GrabView, accepted: Accepted) -> GrabAccepted:
    job_id = view.id
    result = view.result
    return GrabAccepted(
        id=job_id,
        state=view.state.value,
        status_url=f"/grabs/{job_id}" if job_id else None,
        result_url=(f"/grabs/{job_id}/result" if job_id else
                    result.public_url if result is not None else None),
        position=view.position,
        eta_s=view.eta_s,
        cached=accepted.cached,
        attached=accepted.attached,
        cancel_token=accepted.cancel_token,
    )


@operation("Submit a grab", body=GrabRequest, responses={202: GrabAccepted, 200: GrabAccepted},
           tags=["grabs"])
async def post_grab(request: Request) -> Response:
    system = _system(request)
    data = await json_object(request, what="the grab")
    grab, target = await validated(system.settings, data)
    accepted = await _client(request).submit(grab, target)
    status = 200 if accepted.cached else 202
    body = _accepted(accepted.view, accepted)
    return JSONResponse(body.model_dump(mode="json"), status_code=status)


@operation("A grab's state, stage, queue position, ETA, timings and error "
           "(?wait=S: once final, or after S seconds)",
           responses={200: GrabView}, tags=["grabs"])
async def get_grab(request: Request) -> Response:
    client = _client(request)
    view = await client.job(request.path_params["job_id"])
    if "wait" in request.query_params:
        # A long poll: one request per job instead of a poll every few hundred milliseconds.
        most = _system(request).settings.queue.wait_timeout_s
        view = await client.wait(view, _wait_seconds(request.query_params["wait"], most))
    return JSONResponse(view.as_json())


def _wait_seconds(raw: str, most: float) -> float:
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not (0 < seconds <= most):  # also refuses nan and inf
        raise ApiError(422, f"wait: seconds, more than 0 and at most {most:g} "
                            "(queue.wait_timeout_s)")
    return seconds


@operation("Cancel a grab: with its cancel token (from the submission) or the admin token",
           responses={200: GrabView}, tags=["grabs"], secured=True,
           query={"token": {"type": "string"}}, headers={CANCEL_HEADER: {"type": "string"}})
async def delete_grab(request: Request) -> Response:
    job_id = request.path_params["job_id"]
    await _may_cancel(request, job_id)
    view = await _client(request).cancel(job_id)
    return JSONResponse(view.as_json())


async def _may_cancel(request: Request, job_id: str) -> None:
    """The admin may cancel any job; anyone else only with the job's own cancel token.

    Callers attached to a job (same capture key) never got its token: their cancel would
    stop the work every other waiter is waiting for.
    """
    system = _system(request)
    if holds_token(request, system.settings.server.admin_token):
        return
    given = request.headers.get(CANCEL_HEADER) or request.query_params.get("token")
    if given:
        record = await _store(request).get_job(job_id)
        if record is None:
            raise ApiError(404, f"no grab with id {job_id!r}")
        if cancel_token_matches(record, given):
            return
    raise ApiError(403, f"cancelling grab {job_id} needs its cancel token (the 'cancel_token' "
                   f"of the answer to its submission, sent as {CANCEL_HEADER} or ?token=) or "
                   "the admin token")


async def _result_response(client: GrabClient, view: GrabView) -> Response:
    if view.result is not None:
        location = await client.locate(view.result)
        if location.path is not None and location.path.is_file():
            return FileResponse(location.path, media_type=view.result.content_type,
                                headers={"Cache-Control": "public, max-age=86400"})
        if location.url is not None:
            return RedirectResponse(location.url, status_code=302)
    raise ApiError(404, "the stored result is missing")


@operation("The captured file (bytes, or 302 to the public URL)",
           responses={200: "application/octet-stream"}, tags=["grabs"])
async def get_grab_result(request: Request) -> Response:
    client = _client(request)
    view = await client.job(request.path_params["job_id"])
    if view.state is not JobState.COMPLETE:
        detail = f": {view.error}" if view.error else ""
        raise ApiError(409, f"grab is {view.state.value}{detail}", code="not_ready",
                       retry_after_s=view.eta_s or 1)
    return await _result_response(client, view)


async def grab_and_wait(request: Request, data: dict[str, Any], *, wait: bool) -> Response:
    """A GET route's grab: the file once complete (waiting up to queue.wait_timeout_s unless
    told not to), else 202 with where to look."""
    system = _system(request)
    client = _client(request)
    grab, target = await validated(system.settings, data)
    accepted = await client.submit(grab, target)
    view = accepted.view
    if wait:
        view = await client.wait(view, system.settings.queue.wait_timeout_s)
    if view.state is JobState.COMPLETE:
        return await _result_response(client, view)
    if view.state in (JobState.FAILED, JobState.CANCELLED):
        raise ApiError(422 if view.state is JobState.FAILED else 409,
                       f"grab {view.state.value}: {view.error}", code=view.state.value)
    body = _accepted(view, accepted)
    headers = {"Location": body.status_url or ""}
    if view.position is not None:
        headers["X-Queue-Position"] = str(view.position)
    return JSONResponse(body.model_dump(mode="json"), status_code=202, headers=headers)


def _query_number(request: Request, name: str, kind: type, default: Any) -> Any:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ApiError(422, f"{name}: expected a number, got {raw!r}") from None


@operation("Capture a piece and answer its bytes (waits; ?nowait=1 answers 202)",
           responses={200: "application/octet-stream", 202: GrabAccepted}, tags=["grabs"],
           query={"nowait": {"type": "string"}, "frames": {"type": "integer"},
                  "fps": {"type": "number"}, "clock": {"type": "string"}})
async def get_grab_sync(request: Request) -> Response:
    p = request.path_params
    known = _format_named(p["format"])
    data = {
        "piece": p["piece"], "format": known or p["format"],
        "width": p["width"], "height": p["height"],
        "frames": _query_number(request, "frames", int,
                                16 if known and known.motion_by_default else 1),
        "fps": _query_number(request, "fps", float, 20.0),
        "clock": request.query_params.get("clock", "real"),
    }
    if known is None or not known.animates:
        data["frames"] = 1
    wait = request.query_params.get("nowait") not in ("1", "true", "yes")
    return await grab_and_wait(request, data, wait=wait)


def _format_named(name: str) -> Format | None:
    # An unknown name is left to GrabRequest, which refuses it with the list of formats.
    try:
        return Format(name)
    except ValueError:
        return None


def split_name(name: str, allowed: tuple[str, ...]) -> tuple[str, str]:
    piece, dot, ext = name.rpartition(".")
    if not dot or ext not in allowed:
        raise ApiError(404, f"expected {{piece}}.{'|'.join(allowed)}, got {name!r}")
    return piece, ext


@operation("A square still of a piece (cached; hits never touch the browser)",
           responses={200: "image/png"}, tags=["grabs"])
async def get_icon(request: Request) -> Response:
    size = request.path_params["size"]
    piece, ext = split_name(request.path_params["name"], ("png", "webp"))
    data = {"piece": piece, "format": ext, "width": size, "height": size, "frames": 1,
            "lane": "background"}
    return await grab_and_wait(request, data, wait=True)


@operation("A still preview of a piece at WIDTHxHEIGHT (cached)",
           responses={200: "image/png"}, tags=["grabs"])
async def get_preview(request: Request) -> Response:
    dims = request.path_params["dims"]
    width, x, height = dims.partition("x")
    if not x or not width.isdigit() or not height.isdigit():
        raise ApiError(404, f"expected WIDTHxHEIGHT, got {dims!r}")
    piece, ext = split_name(request.path_params["name"], ("png",))
    data = {"piece": piece, "format": ext, "width": int(width), "height": int(height),
            "frames": 1, "lane": "background"}
    return await grab_and_wait(request, data, wait=True)


@operation("Active, queued and recent grabs", responses={200: GrabStatus}, tags=["grabs"])
async def grab_status(request: Request) -> Response:
    answer = await _system(request).ask_async("grab_queue", QueueStatus())
    return JSONResponse(GrabStatus.model_validate(answer).as_json())


def _store(request: Request) -> StoreClient:
    system = _system(request)
    return StoreClient(system.registry, timeout_s=system.settings.supervisor.ask_timeout_s)


@operation("Pieces frozen after repeated failures", tags=["grabs"])
async def list_frozen(request: Request) -> Response:
    frozen = await _store(request).list_frozen()
    now = time.time()
    return JSONResponse({"frozen": [f.model_dump(mode="json") for f in frozen
                                    if f.frozen_until > now]})


@operation("Unfreeze a piece (admin)", tags=["admin"], secured=True)
async def unfreeze(request: Request) -> Response:
    system = _system(request)
    require_token(request, system.settings.server.admin_token, what="admin",
                  setting="server.admin_token")
    piece = request.path_params["piece"]
    if not await _store(request).unfreeze(piece):
        raise ApiError(404, f"piece {piece!r} is not frozen")
    return JSONResponse({"piece": piece, "frozen": False})


@operation("Forget a cached result (admin): the next request for it captures again",
           tags=["admin"], secured=True)
async def clear_cached(request: Request) -> Response:
    system = _system(request)
    require_token(request, system.settings.server.admin_token, what="admin",
                  setting="server.admin_token")
    key = request.path_params["capture_key"]
    if not await _store(request).cache_delete(key):
        raise ApiError(404, f"no cached result for capture key {key!r}")
    return JSONResponse({"capture_key": key, "cached": False})


@operation("A stored result file (local storage)", responses={200: "application/octet-stream"},
           tags=["grabs"])
async def get_result_file(request: Request) -> Response:
    key = request.path_params["key"]
    try:
        location = await _client(request).locate_key(key)
    except ValueError as exc:
        raise ApiError(404, f"no result {key!r}: {exc}") from None
    path = location.path
    if path is None or not Path(path).is_file():
        raise ApiError(404, f"no result {key!r}")
    fmt = Format.from_suffix(Path(path).suffix.lstrip("."))
    return FileResponse(path, media_type=fmt.content_type if fmt else None)


def grab_routes() -> list[BaseRoute]:
    return [
        Route("/grabs", post_grab, methods=["POST"]),
        Route("/grabs/{job_id}", get_grab, methods=["GET"]),
        Route("/grabs/{job_id}", delete_grab, methods=["DELETE"]),
        Route("/grabs/{job_id}/result", get_grab_result, methods=["GET"]),
        Route("/grab/{format}/{width:int}/{height:int}/{piece}", get_grab_sync, methods=["GET"]),
        Route("/icon/{size:int}/{name}", get_icon, methods=["GET"]),
        Route("/preview/{dims}/{name}", get_preview, methods=["GET"]),
        Route("/grab-status", grab_status, methods=["GET"]),
        Route("/frozen", list_frozen, methods=["GET"]),
        Route("/frozen/{piece}", unfreeze, methods=["DELETE"]),
        Route("/cache/{capture_key}", clear_cached, methods=["DELETE"]),
        Route(RESULTS_PATH + "{key:path}", get_result_file, methods=["GET"]),
        Mount("/pieces", app=StaticFiles(directory=pieces_dir(), html=True), name="pieces"),
    ]


