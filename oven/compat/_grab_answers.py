"""How an old grab route is taken through oven's own steps (validate, submit, wait, locate)
and answered the way the old clients read it: the bytes, a redirect to the stored object, a
placeholder image while it bakes, or oven's JSON when neither fits."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from oven.actors.grab_queue import GrabView
from oven.actors.store import StoreClient
from oven.compat._grab_params import OldGrab
from oven.compat._placeholder import placeholder
from oven.config import Settings
from oven.grabs import GrabRequest, capture_key
from oven.http import Accepted, ApiError, GrabAccepted, GrabClient, holds_token, validated
from oven.jobs import JobState
from oven.system import ActorSystem

BAKING_WAIT_MS = 30_000  # the old service's X-Estimated-Wait when it knew no better
# Placeholders are made one at a time: each costs tens of ms of CPU, anyone may ask for any
# size, and a burst of them must not take every core from the captures.
_PLACEHOLDER_SLOT = asyncio.Semaphore(1)
CACHE_KEY_FRAGMENT = "oven-cache-key="


def system_of(request: Request) -> ActorSystem:
    system: ActorSystem = request.app.state.system
    return system


async def validated_grab(settings: Settings, old: OldGrab) -> tuple[GrabRequest, str]:
    """oven's own validation (the page URL with the old decorations filled in), and the old
    cacheKey folded into the capture key."""
    grab, target = await validated(settings, old.data)
    if old.cache_key is not None:
        # The capture key is made from the page URL: a fragment changes it (an edited piece,
        # a new cacheKey, is captured again) without changing what any server is asked for.
        target += ("&" if "#" in target else "#") + CACHE_KEY_FRAGMENT + old.cache_key
    return grab, target


class Recaptures:
    """When each capture key was last forced past the cache (skipCache), so one URL cannot be
    made to capture again and again by anyone who can send it. Bounded: the least recently
    forced keys are forgotten first."""

    LIMIT = 4096

    def __init__(self) -> None:
        self._last: OrderedDict[str, float] = OrderedDict()

    def allow(self, key: str, *, every_s: float, now: float) -> bool:
        last = self._last.get(key)
        if last is not None and now - last < every_s:
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        while len(self._last) > self.LIMIT:
            self._last.popitem(last=False)
        return True


def _recaptures(request: Request) -> Recaptures:
    state = request.app.state
    found = getattr(state, "compat_recaptures", None)
    if not isinstance(found, Recaptures):
        found = state.compat_recaptures = Recaptures()
    return found


async def submit(request: Request, old: OldGrab) -> tuple[GrabClient, Accepted]:
    """Validate and submit an old grab; skipCache first forgets its cached result.

    Anyone may send skipCache (the old clients do, without credentials), so a key is forced at
    most once per [compat.grabs] skip_cache_min_interval_s unless the admin token comes with
    it; the rate limit, the queue bound and single-flight apply as to any grab.
    """
    system = system_of(request)
    settings = system.settings
    grab, target = await validated_grab(settings, old)
    if old.skip_cache:
        key = capture_key(grab, target, settings.pieces.render_version)
        admin = holds_token(request, settings.server.admin_token)
        every_s = 0.0 if admin else settings.compat.grabs.skip_cache_min_interval_s
        if _recaptures(request).allow(key, every_s=every_s, now=time.monotonic()):
            store = StoreClient(system.registry, timeout_s=settings.supervisor.ask_timeout_s)
            await store.cache_delete(key)
    client = GrabClient(system)
    return client, await client.submit(grab, target)


def grab_id(view: GrabView) -> str:
    return view.id or view.capture_key or ""


def refuse_final(view: GrabView) -> None:
    """A failed or cancelled grab is answered as oven answers it."""
    if view.state in (JobState.FAILED, JobState.CANCELLED):
        raise ApiError(422 if view.state is JobState.FAILED else 409,
                       f"grab {view.state.value}: {view.error}", code=view.state.value)


async def deliver(request: Request, client: GrabClient, view: GrabView, *, cached: bool,
                  redirect_cached: bool, max_age_s: int = 3600,
                  cached_max_age_s: int = 86400) -> Response:
    """A complete grab's file. A cache hit whose storage has a URL of its own is a redirect
    there, unless the request carries Origin: the bucket's CDN sends no CORS headers, so a
    page's fetch gets the bytes proxied instead (as the old service did)."""
    result = view.result
    if result is None:
        raise ApiError(404, "the stored result is missing")
    location = await client.locate(result)
    headers = {"X-Grab-Id": grab_id(view), "X-Cache": "HIT" if cached else "MISS",
               "Cache-Control": f"public, max-age={cached_max_age_s if cached else max_age_s}"}
    origin = request.headers.get("origin")
    if cached and redirect_cached and location.url is not None and origin is None:
        return RedirectResponse(location.url, status_code=302, headers=headers)
    if location.path is not None and location.path.is_file():
        return FileResponse(location.path, media_type=result.content_type, headers=headers)
    if location.url is not None:
        headers["X-Proxy"] = "CDN"
        return StreamingResponse(client.chunks(result), media_type=result.content_type,
                                 headers=headers)
    raise ApiError(404, "the stored result is missing")


def accepted_json(view: GrabView, accepted: Accepted) -> Response:
    """oven's own answer to a grab that is not done: 202, where to look, the position."""
    body = GrabAccepted(
        id=view.id, state=view.state.value,
        status_url=f"/grabs/{view.id}" if view.id else None,
        result_url=f"/grabs/{view.id}/result" if view.id else None,
        position=view.position, eta_s=view.eta_s, cached=accepted.cached,
        attached=accepted.attached, cancel_token=accepted.cancel_token)
    headers = {"Location": body.status_url or ""}
    if view.position is not None:
        headers["X-Queue-Position"] = str(view.position)
    return JSONResponse(body.model_dump(mode="json"), status_code=202, headers=headers)


async def baking(view: GrabView, accepted: Accepted, *, fmt: str, width: int,
                 height: int) -> Response:
    """What an <img> shows while its grab bakes: a placeholder of the size and format it
    asked for, never cached, with where the grab stands."""
    headers = {
        "X-Oven-Status": "baking",
        "X-Queue-Position": str(view.position or 0),
        "X-Estimated-Wait": str(round(view.eta_s * 1000) if view.eta_s is not None
                                else BAKING_WAIT_MS),
        "X-Grab-Id": grab_id(view),
        "Cache-Control": "no-store",
    }
    async with _PLACEHOLDER_SLOT:
        image = await asyncio.to_thread(placeholder, width, height, fmt)
    if image is None:  # no still image stands in for a video: oven's JSON answer instead
        response = accepted_json(view, accepted)
        response.headers.update(headers)
        return response
    data, content_type = image
    return Response(data, media_type=content_type, headers=headers)
