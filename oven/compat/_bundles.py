"""The old service's bundle routes: `GET /bundle-html` (one self-contained HTML file of a
piece), `POST /bundle-prewarm` and `GET /bundle-status`, answered by oven.bundles.

A piece is named as for a grab (`piece`, or `code` for a KidLisp `$code`) and checked by the
same schema and target rules (GrabRequest, piece_target), so a name the grab routes refuse is
refused here with the same words.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from oven import bundles
from oven.bundles import BundleRefused
from oven.config import BundlesSettings
from oven.grabs import GrabRequest, TargetRefused, UnknownPiece, piece_target
from oven.http import ApiError, ObserverStream, closing_event, operation, validation_message
from oven.system import ActorSystem

if TYPE_CHECKING:  # the bundler's parsers load on the first bundle asked for, not at start
    from oven.bundles import Bundle, Bundler

log = logging.getLogger(__name__)

FORMATS = ("html", "json", "base64", "stream")
_TRUE = frozenset({"", "1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
# Progress events a slow reader may have pending; past it, progress (never the result) is
# dropped for that reader.
_STREAM_BACKLOG = 64
_STREAM_SEND_TIMEOUT_S = 10.0


def _bundler(request: Request) -> Bundler:
    """One per app, made on first use: it lives on the loop that serves the app."""
    bundler: Bundler | None = getattr(request.app.state, "bundler", None)
    if bundler is None:
        bundler = request.app.state.bundler = bundles.Bundler()
    return bundler


def _settings(request: Request) -> BundlesSettings:
    system: ActorSystem = request.app.state.system
    return system.settings.compat.bundles


def _flag(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return False
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ApiError(422, f"{name}: expected true or false, got {raw[:40]!r}")


def _piece_name(piece: str | None, code: str | None) -> str:
    if (piece is None) == (code is None):
        raise ApiError(422, "give exactly one of 'piece' and 'code'")
    if code is not None:
        return code if code.startswith("$") else f"${code}"
    assert piece is not None
    return piece


def _target(request: Request, name: str) -> str:
    """The piece's URL, by the grab routes' own rules (one schema end to end)."""
    system: ActorSystem = request.app.state.system
    try:
        GrabRequest(piece=name)
    except ValidationError as exc:
        message, details = validation_message(exc)
        raise ApiError(422, message, extra={"details": details}) from None
    try:
        return piece_target(name, system.settings.pieces)
    except UnknownPiece as exc:
        raise ApiError(404, str(exc), code="unknown_piece") from None
    except TargetRefused as exc:
        raise ApiError(422, str(exc), code="target_refused") from None


def _refused(exc: BundleRefused) -> ApiError:
    return ApiError(exc.status, exc.message, code=exc.code,
                    retry_after_s=2.0 if exc.status == 429 else None)


def _body(bundle: Bundle, cached: bool, *, html: bool = True) -> dict[str, Any]:
    body = {**bundle.summary(), "cached": cached}
    if html:
        body["html"] = bundle.html.decode("utf-8")
    return body


@operation("A self-contained HTML file of a piece (old service: bundler)",
           query={"piece": {"type": "string"}, "code": {"type": "string"},
                  "format": {"type": "string", "enum": list(FORMATS)},
                  "nominify": {"type": "string"}, "nocompress": {"type": "string"}},
           responses={200: "text/html"}, tags=["compat"])
async def bundle_html(request: Request) -> Response:
    params = request.query_params
    fmt = params.get("format") or (
        "stream" if "text/event-stream" in request.headers.get("accept", "") else "html")
    if fmt not in FORMATS:
        raise ApiError(422, f"format: expected one of {', '.join(FORMATS)}, got {fmt[:40]!r}")
    minify = not _flag(request, "nominify")
    _flag(request, "nocompress")  # accepted for old clients: oven never compresses the file
    name = _piece_name(params.get("piece"), params.get("code"))
    url = _target(request, name)
    settings = _settings(request)
    if fmt == "stream":
        return _stream(request, name, url, settings, minify)
    try:
        bundle, cached = await _bundler(request).bundle(name, url, settings, minify=minify)
    except BundleRefused as exc:
        raise _refused(exc) from None
    headers = {"X-Bundle-Hash": bundle.hash, "X-Bundle-Cache": "hit" if cached else "miss",
               "Cache-Control": "no-cache"}
    if fmt == "json":  # says whether it was cached: no validator of its own
        return JSONResponse(_body(bundle, cached), headers=headers)
    # The file is a function of the content hash (and of its encoding): a client holding it
    # revalidates for a 304, and the piece's sources were fetched again to know it is current.
    headers["ETag"] = f'"{bundle.hash}"' if fmt == "html" else f'"{bundle.hash}.{fmt}"'
    if headers["ETag"] in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    if fmt == "base64":
        return PlainTextResponse(base64.b64encode(bundle.html).decode("ascii"), headers=headers)
    filename = name.lstrip("$") or "piece"
    headers["Content-Disposition"] = f'inline; filename="{filename}.html"'
    return Response(bundle.html, media_type="text/html; charset=utf-8", headers=headers)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",")[:32]}


def _stream(request: Request, name: str, url: str, settings: BundlesSettings,
            minify: bool) -> Response:
    """Server-sent events: `progress` while the bundle is made, then one `complete` (the json
    format's body) or one `error` (`{"error": {...}}`), and the stream ends."""
    bundler = _bundler(request)
    backlog: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(_STREAM_BACKLOG)

    def progress(stage: str, detail: dict[str, Any]) -> None:
        # A reader this far behind skips some progress; it still gets the result.
        with contextlib.suppress(asyncio.QueueFull):
            backlog.put_nowait(("progress", {"stage": stage, **detail}))

    async def events() -> AsyncGenerator[bytes, None]:
        build = asyncio.ensure_future(bundler.bundle(name, url, settings, minify=minify,
                                                     progress=progress))
        try:
            while True:
                getting = asyncio.ensure_future(backlog.get())
                await asyncio.wait({build, getting}, return_when=asyncio.FIRST_COMPLETED)
                if getting.done():
                    yield _event(*getting.result())
                    continue
                getting.cancel()
                while not backlog.empty():
                    yield _event(*backlog.get_nowait())
                break
            try:
                bundle, cached = build.result()
            except BundleRefused as exc:
                yield _event("error", {"error": {"code": exc.code, "message": exc.message,
                                                 "status": exc.status}})
                return
            except Exception as exc:
                log.error("bundle of %s failed", name, exc_info=exc)
                yield _event("error", {"error": {"code": "internal", "status": 500,
                                                 "message": f"internal error: "
                                                            f"{type(exc).__name__}"}})
                return
            yield _event("complete", _body(bundle, cached))
        finally:
            build.cancel()  # this caller's wait only: the build itself is shielded

    return ObserverStream(events(), send_timeout_s=_STREAM_SEND_TIMEOUT_S,
                          closing=closing_event(request))


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


@operation("Make bundles ahead of their first request (old service: bundler)",
           responses={202: None}, tags=["compat"])
async def bundle_prewarm(request: Request) -> Response:
    """`{"pieces": [...], "nominify": false}` (or a bare list of pieces): each named piece is
    bundled in the background; the answer says which were started and which were refused."""
    try:
        raw = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "body: not JSON") from None
    if isinstance(raw, list):
        raw = {"pieces": raw}
    if not isinstance(raw, dict) or not isinstance(raw.get("pieces"), list):
        raise ApiError(422, "pieces: expected a list of piece names")
    unknown = sorted(set(raw) - {"pieces", "nominify"})
    if unknown:
        raise ApiError(422, f"{unknown[0]}: unknown field (expected pieces, nominify)")
    nominify = raw.get("nominify", False)
    if not isinstance(nominify, bool):
        raise ApiError(422, "nominify: expected true or false")
    settings = _settings(request)
    pieces = raw["pieces"]
    if not pieces:
        raise ApiError(422, "pieces: name at least one piece")
    if len(pieces) > settings.max_prewarm:
        raise ApiError(413, f"pieces: at most {settings.max_prewarm} in one request "
                       "([compat.bundles] max_prewarm)", code="too_many")
    started: list[str] = []
    refused: list[dict[str, Any]] = []
    for piece in dict.fromkeys(pieces if all(isinstance(p, str) for p in pieces) else ()):
        try:
            _prewarm(request, piece, _target(request, piece), settings, minify=not nominify)
            started.append(piece)
        except ApiError as exc:
            refused.append({"piece": piece[:80],
                            "error": {"code": exc.code, "message": exc.message}})
    if len(started) + len(refused) == 0:
        raise ApiError(422, "pieces: each piece is a name (a string)")
    return JSONResponse({"started": started, "refused": refused}, status_code=202)


def _prewarm(request: Request, piece: str, url: str, settings: BundlesSettings, *,
             minify: bool) -> None:
    bundler = _bundler(request)
    try:
        bundler.admit(piece, settings, minify=minify)  # refused in the answer, not a log
    except BundleRefused as exc:
        raise _refused(exc) from None
    tasks: set[asyncio.Task[None]] | None = getattr(request.app.state, "bundle_prewarms", None)
    if tasks is None:
        tasks = request.app.state.bundle_prewarms = set()

    async def warm() -> None:
        try:
            await bundler.bundle(piece, url, settings, minify=minify)
        except BundleRefused as exc:
            log.info("prewarm of bundle %s refused: %s", piece, exc.message)
        except Exception as exc:
            log.error("prewarm of bundle %s failed", piece, exc_info=exc)

    # Owned: kept until done, so it is neither collected mid-run nor lost silently.
    task = asyncio.get_running_loop().create_task(warm(), name=f"prewarm {piece}")
    tasks.add(task)
    task.add_done_callback(tasks.discard)


@operation("What the bundle cache holds (old service: bundler)", tags=["compat"])
async def bundle_status(request: Request) -> Response:
    return JSONResponse(_bundler(request).status(_settings(request)))


def routes() -> list[BaseRoute]:
    return [
        Route("/bundle-html", bundle_html, methods=["GET"]),
        Route("/bundle-prewarm", bundle_prewarm, methods=["POST"]),
        Route("/bundle-status", bundle_status, methods=["GET"]),
    ]
