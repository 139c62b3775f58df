"""Bake routes: POST /bakes (archive upload or url) → 202; GET /bakes/{id}; GET /bakes.

The POST does the door work itself, so every refusal is a 4xx to the caller: reserve a place
with the Baker (429 when full), stream the body to the bake's dir under bakes.max_archive_bytes
(the app's BodyLimit skips /bakes) and bakes.upload_timeout_s, fetch a `url` instead when given,
unpack and check the archive in a worker thread under bakes.check_timeout_s, plan fps/scale,
then hand the tape to the Baker. Nothing here blocks the HTTP loop on the disk or the CPU.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from oven import metrics
from oven.actors.baker import Admit, Enqueue, Release, work_root
from oven.actors.store import StoreClient
from oven.bakes import (
    BODY_SLACK,
    BakeRefused,
    BakeState,
    check_archive,
    fetch_archive,
    plan_bake,
    read_body,
)
from oven.http._errors import ApiError, validation_message
from oven.http._openapi import operation
from oven.system import ActorSystem
from oven.webhooks import check_callback_url

log = logging.getLogger(__name__)


class BakeOptions(BaseModel):
    """Fields of POST /bakes (form fields, JSON keys, or query parameters with a raw body)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, max_length=2048,
                            description="Fetch the archive from here ([pieces] origin rules).")
    scale: int = Field(1, ge=1, le=8, description="Nearest-neighbour integer upscale factor.")
    callback_url: str | None = Field(None, max_length=2048,
                                     description="POSTed the bake's final state (webhooks).")


class BakeView(BaseModel):
    id: str
    state: BakeState
    stage: str | None = Field(None, description="Where it is: fetching, checking, queued, "
                              "encoding, uploading, complete or failed.")
    error: str | None = None
    source: str | None = None
    frames: int | None = None
    fps: float | None = None
    fps_source: str | None = None
    duration: float | None = None
    has_audio: bool | None = None
    width: int | None = None
    height: int | None = None
    scale: int | None = None
    url: str | None = None
    thumbnail_url: str | None = None
    size: int | None = None
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None


class BakeList(BaseModel):
    bakes: list[BakeView]


def _system(request: Request) -> ActorSystem:
    system: ActorSystem = request.app.state.system
    return system


def bake_view(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored bake record as the API shows it (BakeView's fields only)."""
    return BakeView.model_validate({k: v for k, v in doc.items() if k in BakeView.model_fields}
                                   ).model_dump(mode="json")


def _options(fields: dict[str, Any]) -> BakeOptions:
    try:
        return BakeOptions.model_validate(fields)
    except ValidationError as exc:
        message, details = validation_message(exc)
        raise ApiError(422, message, extra={"details": details}) from None


@operation("Bake a tape: multipart 'archive' (ZIP/tar of frame-NNNNN.png, optional "
           "soundtrack.wav and timing.json) or JSON/form 'url' → MP4 + thumbnail",
           body=BakeOptions, responses={202: BakeView}, tags=["bakes"],
           query={"scale": {"type": "integer"}, "callback_url": {"type": "string"}})
async def post_bake(request: Request) -> Response:
    system = _system(request)
    settings = system.settings.bakes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_archive_bytes + BODY_SLACK:
        metrics.BAKES.labels(outcome="refused").inc()
        raise ApiError(413, f"request body of {declared} bytes is over bakes.max_archive_bytes "
                       f"({settings.max_archive_bytes})")
    bake_id = uuid.uuid4().hex
    await system.ask_async("bakes", Admit(bake_id))  # BakesBusy: a Refusal, 429 (http._errors)
    work = work_root(system.settings) / bake_id
    handed_over = False
    try:
        work.mkdir(parents=True)
        doc = await _intake(request, system, bake_id, work)
        handed_over = True
    except BakeRefused as exc:
        metrics.BAKES.labels(outcome="refused").inc()
        log.info("bake refused: %s", exc.message, extra={"bake": bake_id})
        raise ApiError(exc.status, exc.message, code=exc.code) from None
    except ClientDisconnect:
        raise ApiError(400, "client went away during the upload") from None
    finally:
        if not handed_over:
            # A refused archive may have left thousands of frames: not on the HTTP loop.
            await asyncio.to_thread(shutil.rmtree, work, ignore_errors=True)
            try:
                await system.ask_async("bakes", Release(bake_id))
            except Exception as exc:  # the answer to the client matters more than this
                log.warning("bake %s: reservation not released: %s", bake_id, exc)
    return JSONResponse(bake_view(doc), status_code=202,
                        headers={"Location": f"/bakes/{bake_id}"})


async def _intake(request: Request, system: ActorSystem, bake_id: str, work: Any) -> Any:
    settings = system.settings.bakes
    archive = work / "archive.bin"
    intake = await read_body(request.stream(), request.headers.get("content-type", ""),
                             archive, settings=settings)
    options = _options({**request.query_params, **intake.fields})
    if intake.archive is not None and options.url:
        raise ApiError(422, "send either an archive or a url, not both")
    if options.callback_url:  # CallbackRefused answers 422 (see http._errors)
        check_callback_url(options.callback_url, system.settings.webhooks)
    source = "upload"
    if intake.archive is None:
        if not options.url:
            raise ApiError(422, "archive: missing; send a multipart 'archive' file part or "
                           "a 'url'")
        await fetch_archive(options.url, archive, settings=settings,
                            pieces=system.settings.pieces)
        source = options.url
    tape = await check_archive(archive, work / "tape", settings)
    plan = plan_bake(tape, options.scale, settings)
    timeout = system.settings.supervisor.ask_timeout_s
    return await system.ask_async("bakes", Enqueue(bake_id, work, tape, plan, source,
                                                   options.callback_url), timeout=timeout)


def _store(request: Request) -> StoreClient:
    system = _system(request)
    return StoreClient(system.registry, timeout_s=system.settings.supervisor.ask_timeout_s)


@operation("A bake's state, error, frames, fps, duration, audio, url and thumbnail_url",
           responses={200: BakeView}, tags=["bakes"])
async def get_bake(request: Request) -> Response:
    bake_id = request.path_params["bake_id"]
    if not bake_id.isalnum() or len(bake_id) > 64:
        raise ApiError(404, f"no bake with id {bake_id!r}")
    doc = await _store(request).get_doc("bakes", bake_id)
    if doc is None:
        raise ApiError(404, f"no bake with id {bake_id!r}")
    return JSONResponse(bake_view(doc))


@operation("Recent bakes, newest first", responses={200: BakeList}, tags=["bakes"],
           query={"limit": {"type": "integer"}})
async def list_bakes(request: Request) -> Response:
    most = _system(request).settings.bakes.list_limit
    raw = request.query_params.get("limit", str(most))
    if not raw.isdigit() or int(raw) < 1:
        raise ApiError(422, f"limit: expected a positive integer, got {raw!r}")
    docs = await _store(request).list_docs("bakes", limit=min(int(raw), most))
    return JSONResponse({"bakes": [bake_view(doc) for doc in docs]})


def bake_routes() -> list[BaseRoute]:
    return [
        Route("/bakes", post_bake, methods=["POST"]),
        Route("/bakes", list_bakes, methods=["GET"]),
        Route("/bakes/{bake_id}", get_bake, methods=["GET"]),
    ]
