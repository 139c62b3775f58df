"""The old icon and preview routes: /icon/{W}x{H}/{piece}.png|.webp, /preview/{W}x{H}/{piece}.png.

oven's own /icon/{size}/{name} (one square side) keeps answering: these routes match only a
WIDTHxHEIGHT segment. Like oven's icons they run in the background lane and are cached by
capture key, so a hit never touches the browser.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from oven.compat._grab_answers import accepted_json, deliver, refuse_final, submit, system_of
from oven.compat._grab_params import OLD_PLAYBACK_FPS, OldGrab, side, whole
from oven.grabs import Lane
from oven.http import ApiError, operation
from oven.jobs import JobState

ICON_MAX, ANIMATED_ICON_MAX = 512, 128
PREVIEW_MAX = (1920, 1080)
ANIMATED_FRAMES, MAX_ANIMATED_FRAMES = 30, 60
ANIMATED_FPS, MAX_ANIMATED_FPS = 15, 30
DAY = 86_400


_DIMENSIONS = re.compile(r"[0-9]{1,5}x[0-9]{1,5}")


class DimensionsRoute(Route):
    """A route whose {dims} segment is WIDTHxHEIGHT (each side 1-5 digits): anything else is
    not this route, so a square size goes on to oven's own /icon/{size}/ and a malformed one to
    its 404 naming the form. (A URL convertor would do it too, but its name would show in the
    OpenAPI paths, which then name a parameter that is not declared.)"""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE and \
                not _DIMENSIONS.fullmatch(child["path_params"].get("dims", "")):
            return Match.NONE, {}
        return match, child


def _sides(dims: str, most: tuple[int, int]) -> tuple[int, int]:
    """The old routes cut an oversize side down to the largest they made (Math.min), so an
    old `<img src=/icon/256x256/x.webp>` shows a 128 px icon rather than a broken image; a
    side under 1 is still refused."""
    width, _, height = dims.partition("x")
    return (min(side("width", width, least=1, most=99_999), most[0]),
            min(side("height", height, least=1, most=99_999), most[1]))


def _piece_and_format(name: str, allowed: tuple[str, ...]) -> tuple[str, str]:
    piece, dot, ext = name.rpartition(".")
    if not dot or ext not in allowed:
        raise ApiError(404, f"expected {{piece}}.{'|'.join(allowed)}, got {name[:80]!r}")
    return piece, ext


async def _answer(request: Request, data: dict[str, Any], *, max_age_s: int,
                  cached_max_age_s: int) -> Response:
    old = OldGrab(data={**data, "lane": Lane.BACKGROUND}, skip_cache=False, cache_key=None)
    client, accepted = await submit(request, old)
    view = await client.wait(accepted.view, system_of(request).settings.queue.wait_timeout_s)
    refuse_final(view)
    if view.state is not JobState.COMPLETE:
        return accepted_json(view, accepted)
    return await deliver(request, client, view, cached=accepted.cached, redirect_cached=True,
                         max_age_s=max_age_s, cached_max_age_s=cached_max_age_s)


@operation("A piece's icon, WIDTHxHEIGHT: a PNG still (up to 512) or an animated WebP (up to "
           "128; ?frames= at most 60, default 30, taken ?fps= apart, at most 30, default 15; "
           "played at 15 fps); larger values are cut down to those, as the old route did",
           responses={200: "image/png"}, tags=["compat"],
           query={"frames": {"type": "integer"}, "fps": {"type": "integer"}})
async def get_icon(request: Request) -> Response:
    piece, ext = _piece_and_format(request.path_params["name"], ("png", "webp"))
    if ext == "png":
        width, height = _sides(request.path_params["dims"], (ICON_MAX, ICON_MAX))
        data = {"piece": piece, "format": "png", "width": width, "height": height}
        return await _answer(request, data, max_age_s=3600, cached_max_age_s=DAY)
    width, height = _sides(request.path_params["dims"], (ANIMATED_ICON_MAX, ANIMATED_ICON_MAX))
    query = request.query_params
    frames = whole("frames", query["frames"]) if "frames" in query else ANIMATED_FRAMES
    fps = whole("fps", query["fps"]) if "fps" in query else ANIMATED_FPS
    # Above the most, cut down as the old route did; below 1 there is no icon to make.
    if frames < 1:
        raise ApiError(422, f"frames: from 1 to {MAX_ANIMATED_FRAMES}, got {frames}")
    if fps < 1:
        raise ApiError(422, f"fps: from 1 to {MAX_ANIMATED_FPS}, got {fps}")
    frames, fps = min(frames, MAX_ANIMATED_FRAMES), min(fps, MAX_ANIMATED_FPS)
    # The old route took frames `fps` apart and, like every old animation, played them at 15.
    data = {"piece": piece, "format": "webp", "width": width, "height": height,
            "frames": frames, "fps": fps, "playback_fps": OLD_PLAYBACK_FPS}
    return await _answer(request, data, max_age_s=DAY, cached_max_age_s=7 * DAY)


@operation("A piece's preview still, WIDTHxHEIGHT up to 1920x1080 (PNG; larger is cut down)",
           responses={200: "image/png"}, tags=["compat"])
async def get_preview(request: Request) -> Response:
    piece, _ = _piece_and_format(request.path_params["name"], ("png",))
    width, height = _sides(request.path_params["dims"], PREVIEW_MAX)
    data = {"piece": piece, "format": "png", "width": width, "height": height}
    return await _answer(request, data, max_age_s=3600, cached_max_age_s=DAY)


def routes() -> list[BaseRoute]:
    return [
        DimensionsRoute("/icon/{dims}/{name}", get_icon, methods=["GET"]),
        DimensionsRoute("/preview/{dims}/{name}", get_preview, methods=["GET"]),
    ]
