"""The old service's tape bakes: POST /bake, POST /bake-status and POST /bake-complete.

POST /bake answers at once, as the old service did: its caller (a serverless function with a
timeout of seconds) cannot wait for thousands of frames to be fetched. Everything that can be
checked without fetching is checked first, each refusal a 4xx: the fields, the shared secret,
zipUrl against [pieces] and callbackUrl against [webhooks]. Then a place is reserved with the
Baker (429 when full) and the Baker is handed the zipUrl (`Fetch`): it records the bake, fetches,
checks and bakes it exactly like POST /bakes, and when the bake is final the webhooks actor POSTs
the old callback body (signed like every oven webhook, retried with backoff). A zipUrl that
turns out to be unfetchable or a bad archive fails the bake, and the callback says so in `error`.

POST /bake-status and POST /bake-complete were the old service's inbound notices from that
callback's receiver (its later steps, then its end): any 2xx satisfies it. Here /bake-status
also answers where a bake is, found by the caller's own names (code, mongoId, slug) or oven's id.
"""

from __future__ import annotations

import hmac
import logging
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from oven.actors.baker import BAKE_REFS_KIND, BAKES_KIND, Admit, Fetch, Release, work_root
from oven.actors.store import StoreClient
from oven.bakes import OLD_REFS, CallbackStyle
from oven.grabs import TargetRefused, url_target
from oven.http import ApiError, bake_view, json_object, operation, validation_message
from oven.system import ActorSystem
from oven.webhooks import check_callback_url

log = logging.getLogger(__name__)

# The caller's names for a tape are echoed in callbacks and keyed in the store: word characters
# only (the old service's tape codes and Mongo ids are), a slug anything printable.
_REF = r"^[A-Za-z0-9_-]+$"
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
MAX_REF = 256


class OldBake(BaseModel):
    """POST /bake, as the old service's tape uploader sends it."""

    # Unknown fields are ignored, as the old service did: its callers send what they sent it.
    model_config = ConfigDict(extra="ignore")

    mongoId: str = Field(min_length=1, max_length=64, pattern=_REF)
    slug: str = Field(min_length=1, max_length=MAX_REF, pattern=_PRINTABLE)
    code: str = Field(min_length=1, max_length=64, pattern=_REF)
    zipUrl: str = Field(min_length=1, max_length=2048)
    callbackUrl: str = Field(min_length=1, max_length=2048)
    # Missing is a wrong secret (401), as it was: it is not a field the caller may leave out.
    callbackSecret: str | None = Field(None, max_length=1024)
    metadata: Any = None  # accepted and not used, as the old service did


def _system(request: Request) -> ActorSystem:
    system: ActorSystem = request.app.state.system
    return system


def _old_bake(data: dict[str, Any]) -> OldBake:
    try:
        return OldBake.model_validate(data)
    except ValidationError as exc:
        message, details = validation_message(exc)
        # 400, not 422: what the old service answered for missing fields.
        raise ApiError(400, message, code="invalid", extra={"details": details}) from None


def _check_secret(system: ActorSystem, given: str | None) -> None:
    expected = system.settings.compat.bakes.callback_secret
    if expected is None:
        raise ApiError(403, "POST /bake is disabled: set [compat.bakes] callback_secret (the "
                       "old service's CALLBACK_SECRET) to enable it", code="disabled")
    if given is None or not hmac.compare_digest(given.encode(),
                                                expected.get_secret_value().encode()):
        raise ApiError(401, "callbackSecret: wrong or missing", code="unauthorized")


@operation("The old service's tape bake: fetch zipUrl (frames, soundtrack, timing), make an "
           "MP4 and a thumbnail, POST {mongoId, slug, code, mp4Url, thumbnailUrl, secret} (or "
           "error) to callbackUrl; answered at once", body=OldBake, tags=["compat"])
async def post_bake(request: Request) -> Response:
    system = _system(request)
    settings = system.settings
    if settings.cluster.role != "all":
        raise ApiError(404, f'this instance runs cluster.role = "{settings.cluster.role}", '
                       'which runs no bakes; send bakes to an instance with cluster.role = '
                       '"all"', code="not_served")
    if settings.compat.bakes.callback_secret is None:
        _check_secret(system, None)  # disabled: said before the body is read
    bake = _old_bake(await json_object(request, not_object_status=400))
    _check_secret(system, bake.callbackSecret)
    try:
        # Checked now so a refused URL is the caller's 4xx; the Baker checks it again (and
        # resolves it again) when it fetches.
        zip_url = await url_target(bake.zipUrl, settings.pieces)
    except TargetRefused as exc:
        message = str(exc).replace("url:", "zipUrl:", 1)
        raise ApiError(403, message, code="target_refused") from None
    try:
        callback_url = check_callback_url(bake.callbackUrl, settings.webhooks)
    except TargetRefused as exc:  # CallbackRefused: the request names a receiver not allowed
        message = str(exc).replace("callback_url:", "callbackUrl:", 1)
        raise ApiError(422, message, code="callback_refused") from None
    bake_id = uuid.uuid4().hex
    await system.ask_async("bakes", Admit(bake_id))  # BakesBusy: a Refusal, 429
    fetch = Fetch(bake_id, work_root(settings) / bake_id, zip_url,
                  scale=settings.compat.bakes.scale, callback_url=callback_url,
                  callback_style=CallbackStyle.OLD,
                  refs={name: getattr(bake, name) for name in OLD_REFS},
                  result_base=settings.compat.bakes.public_url or str(request.base_url))
    try:
        await system.ask_async("bakes", fetch, timeout=settings.supervisor.ask_timeout_s)
    except BaseException:
        try:
            await system.ask_async("bakes", Release(bake_id))
        except Exception as exc:  # the answer to the client matters more than this
            log.warning("bake %s: reservation not released: %s", bake_id, exc)
        raise
    log.info("bake %s accepted for code=%s slug=%r", bake_id, bake.code, bake.slug,
             extra={"bake": bake_id})
    # The old answer, plus where oven keeps the bake.
    return JSONResponse({"status": "accepted", "slug": bake.slug, "code": bake.code,
                         "message": "Baking started", "id": bake_id,
                         "status_url": f"/bakes/{bake_id}"})


def _store(system: ActorSystem) -> StoreClient:
    return StoreClient(system.registry, timeout_s=system.settings.supervisor.ask_timeout_s)


def _named(data: dict[str, Any]) -> tuple[str, str]:
    """Which bake a /bake-status body names: (field, value)."""
    for name in ("id", *OLD_REFS):
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not 0 < len(value) <= MAX_REF:
            raise ApiError(400, f"{name}: expected a string of 1 to {MAX_REF} characters",
                           code="invalid")
        return name, value
    raise ApiError(400, "name the bake: give its code, mongoId, slug or id", code="invalid")


async def _find(system: ActorSystem, name: str, value: str) -> dict[str, Any] | None:
    store = _store(system)
    if name == "id":
        return await store.get_doc(BAKES_KIND, value)
    ref = await store.get_doc(BAKE_REFS_KIND, f"{name}:{value}")
    if ref is None or not isinstance(ref.get("bake_id"), str):
        return None
    return await store.get_doc(BAKES_KIND, ref["bake_id"])


@operation("Where a bake is (stage, state, error, result URLs), found by its code, mongoId, "
           "slug or id; the old receiver's progress notices are answered the same way",
           tags=["compat"])
async def post_bake_status(request: Request) -> Response:
    system = _system(request)
    name, value = _named(await json_object(request, not_object_status=400))
    doc = await _find(system, name, value)
    if doc is None:
        raise ApiError(404, f"no bake with {name} {value[:80]!r}", code="unknown_bake")
    refs = doc.get("refs") or {}
    return JSONResponse({"status": "ok", **{k: refs.get(k) for k in OLD_REFS},
                         "bake": bake_view(doc)})


@operation("The old receiver's notice that it finished with a bake: acknowledged",
           tags=["compat"])
async def post_bake_complete(request: Request) -> Response:
    _named(await json_object(request, not_object_status=400))
    return JSONResponse({"status": "ok"})


def routes() -> list[BaseRoute]:
    return [
        Route("/bake", post_bake, methods=["POST"]),
        Route("/bake-status", post_bake_status, methods=["POST"]),
        Route("/bake-complete", post_bake_complete, methods=["POST"]),
    ]
