"""The old service's grab routes: GET /grab/{format}/{width}/{height}/{piece} and POST /grab,
plus (from their own rooms) icons, previews, cleanup, clear and the frozen list.

GET /grab/... is also oven's own waiting route: oven's parameters (`frames`, `clock`,
`nowait=1`) keep their meaning, the old ones (`duration` in ms, `fps` 7 by default (the old
7.5 read by parseInt) played at 15, `density`, `quality`, `source`, `skipCache`, `cacheKey`,
`nowait=true`) join them.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from oven.compat import _grab_admin, _grab_icons
from oven.compat._grab_answers import (
    accepted_json,
    baking,
    deliver,
    refuse_final,
    submit,
    system_of,
)
from oven.compat._grab_params import old_grab, side
from oven.http import ApiError, json_object, operation
from oven.jobs import JobState

# nowait: "true" is the old service's (and only "true" was: it answered a placeholder image);
# "1" and "yes" are oven's own (202 with the job's JSON).
_NOWAIT = {"true": "placeholder", "1": "accepted", "yes": "accepted",
           "false": "wait", "0": "wait", "no": "wait"}


@operation("Capture a piece and answer its bytes; the old service's parameters included "
           "(nowait=true: a placeholder image while it bakes; nowait=1: 202 with the job)",
           responses={200: "application/octet-stream"}, tags=["compat"],
           query={name: {"type": "string"} for name in (
               "duration", "fps", "frames", "clock", "density", "quality", "source",
               "skipCache", "cacheKey", "nowait", "playbackFps", "viewportScale")})
async def get_grab(request: Request) -> Response:
    p, query = request.path_params, request.query_params
    mode = _NOWAIT.get(query.get("nowait", "false").lower())
    if mode is None:
        raise ApiError(422, "nowait: true (a placeholder image), 1 (202 with the job) or false")
    width, height = side("width", p["width"]), side("height", p["height"])
    old = old_grab(query, piece=p["piece"], fmt=p["format"], width=width, height=height)
    client, accepted = await submit(request, old)
    view = accepted.view
    if mode == "wait":
        view = await client.wait(view, system_of(request).settings.queue.wait_timeout_s)
    refuse_final(view)
    if view.state is JobState.COMPLETE:
        # A placeholder's request gets the bytes themselves: an <img> follows no promise.
        return await deliver(request, client, view, cached=accepted.cached,
                             redirect_cached=mode == "wait")
    if mode == "placeholder":
        return await baking(view, accepted, fmt=p["format"], width=width, height=height)
    return accepted_json(view, accepted)


@operation("Capture a piece and answer its bytes (the old service's JSON body); a cached "
           "result is a 302 to its stored object, or its bytes when the request has Origin",
           responses={200: "application/octet-stream"}, tags=["compat"])
async def post_grab(request: Request) -> Response:
    body = await json_object(request, what="the grab")
    width = side("width", body.get("width", 512))
    height = side("height", body.get("height", 512))
    old = old_grab(body, piece=body.get("piece"), fmt=body.get("format", "webp"),
                   width=width, height=height)
    client, accepted = await submit(request, old)
    view = await client.wait(accepted.view, system_of(request).settings.queue.wait_timeout_s)
    refuse_final(view)
    if view.state is JobState.COMPLETE:
        return await deliver(request, client, view, cached=accepted.cached,
                             redirect_cached=True)
    return accepted_json(view, accepted)


def routes() -> list[BaseRoute]:
    return [
        # Path segments as strings: a width that is no number is a 422 naming it, not a 404.
        Route("/grab/{format}/{width}/{height}/{piece}", get_grab, methods=["GET"]),
        Route("/grab", post_grab, methods=["POST"]),
        *_grab_icons.routes(),
        *_grab_admin.routes(),
    ]
