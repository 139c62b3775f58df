"""Showcase routes: app-store screenshots (oven.http._app_screenshots) and OG images.

Every capture here goes through the grab queue's background lane and its result cache, like
icons: a repeated request is a cache hit that never touches the browser.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from oven import metrics
from oven.capture import piece_names, pieces_dir
from oven.http._app_screenshots import app_screenshot_routes, grab_problem
from oven.http._errors import ApiError
from oven.http._grab_client import GrabClient, validated
from oven.http._grabs import split_name
from oven.http._openapi import operation
from oven.showcase import (
    LAYOUTS,
    ONE_PIECE,
    OgCache,
    OgImage,
    OgRender,
    OgRenderer,
    ShowcaseSettings,
    boxes_for,
    compose,
    pieces_for,
    utc_today,
)
from oven.system import ActorSystem

log = logging.getLogger(__name__)


def _system(request: Request) -> ActorSystem:
    system: ActorSystem = request.app.state.system
    return system


def _still(piece: str, width: int, height: int, density: int = 1) -> dict[str, Any]:
    return {"piece": piece, "format": "png", "width": width, "height": height,
            "density": density, "frames": 1, "lane": "background"}


# -- OG images ---------------------------------------------------------------------------------


async def _still_bytes(system: ActorSystem, piece: str, width: int, height: int) -> bytes:
    client = GrabClient(system)
    grab, target = await validated(system.settings, _still(piece, width, height))
    accepted = await client.submit(grab, target)
    timeout_s = system.settings.queue.deadline_s + 5
    view = await client.wait(accepted.view, timeout_s)
    problem = grab_problem(view, f"still of {piece!r}", timeout_s)
    if problem is not None:
        raise RuntimeError(problem)
    assert view.result is not None  # complete
    return b"".join([chunk async for chunk in client.chunks(view.result)])


SOURCE_LINES = 64  # more than any panel shows


def _source_lines(piece: str) -> list[str]:
    """A bundled piece's script, for the code-split panel; other pieces show their name only
    (their source is not on this host, and a render fetches nothing but stills)."""
    if piece not in piece_names():
        return []
    html = (pieces_dir() / piece / "index.html").read_text(errors="replace")
    body = html.split("<script>", 1)[1].split("</script>", 1)[0] if "<script>" in html else html
    return body.strip("\n").splitlines()[:SOURCE_LINES]


async def render_og(system: ActorSystem, layout: str, pieces: Sequence[str], day: dt.date, *,
                    title: str = "") -> bytes:
    """An OG image of `layout` for `day`: stills of `pieces` (or of the day's one, for the
    one-piece layouts) captured through the grab queue's background lane, then composed."""
    showcase = system.settings.showcase
    width, height = showcase.og_width, showcase.og_height
    shown = pieces_for(layout, pieces, day)
    boxes = boxes_for(layout, len(shown), width, height)
    stills = await asyncio.gather(*(
        _still_bytes(system, piece, box.width, box.height)
        for piece, box in zip(shown, boxes, strict=True)))
    caption = shown[0] if layout in ONE_PIECE else ""
    source = await asyncio.to_thread(_source_lines, caption) if layout == "code-split" else []
    # Pillow work is CPU-bound: off the event loop that serves every other request.
    return await asyncio.to_thread(functools.partial(
        compose, layout, stills, width, height, title=title, caption=caption, source=source))


def og_renderer(request: Request, name: str, directory: Path, render: OgRender) -> OgRenderer:
    """The app's OG renderer called `name` (made on first use, then kept: it owns the
    single-flight renders), following reloads of the cache directory and retry time."""
    system = _system(request)
    renderers: dict[str, OgRenderer] | None = getattr(request.app.state, "og_renderers", None)
    if renderers is None:
        renderers = request.app.state.og_renderers = {}
    renderer = renderers.get(name)
    if renderer is None:
        renderer = renderers[name] = OgRenderer(
            OgCache(directory), render, retry_s=system.settings.showcase.og_retry_s,
            label=f"{name}:" if name else "")
    renderer.cache.directory = directory  # a reload may have moved it
    renderer.retry_s = system.settings.showcase.og_retry_s
    return renderer


def _og_renderer(request: Request) -> OgRenderer:
    system = _system(request)
    showcase = system.settings.showcase

    async def render(layout: str, day: dt.date) -> bytes:
        return await render_og(system, layout, system.settings.showcase.og_pieces, day)

    return og_renderer(request, "", system.settings.resolve(showcase.og_cache_dir), render)


def seconds_to_midnight(now: dt.datetime) -> int:
    tomorrow = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), dt.UTC)
    return max(1, int((tomorrow - now).total_seconds()))


def _og_response(showcase: ShowcaseSettings, image: OgImage, content: bytes) -> Response:
    if image.freshness == "stale":
        max_age = showcase.og_stale_max_age_s
    else:
        max_age = min(showcase.og_max_age_s, seconds_to_midnight(dt.datetime.now(dt.UTC)))
    metrics.OG_SERVED.labels(layout=image.layout, freshness=image.freshness).inc()
    return Response(content, media_type="image/png", headers={
        "Cache-Control": f"public, max-age={max_age}, "
                         f"stale-while-revalidate={showcase.og_stale_while_revalidate_s}",
        "X-Oven-Og-Date": image.day.isoformat(),
        "X-Oven-Og-Freshness": image.freshness,
    })


@operation("An OG image (1200x630 by default) of the configured pieces, rendered once a day; "
           "while today's renders, the previous one is served at once",
           responses={200: "image/png", 503: None}, tags=["showcase"])
async def get_og(request: Request) -> Response:
    showcase = _system(request).settings.showcase
    layout, _ = split_name(request.path_params["name"], ("png",))
    if layout not in LAYOUTS:
        raise ApiError(404, f"no OG layout {layout!r}; layouts are {', '.join(LAYOUTS)}",
                       code="unknown_layout")
    # RenderFailed and StillRendering are Refusals: 503 with Retry-After (http._errors).
    image, content = await _og_renderer(request).read(
        layout, today=utc_today(), wait_s=showcase.og_wait_timeout_s)
    return _og_response(showcase, image, content)


def showcase_routes() -> list[BaseRoute]:
    return [
        *app_screenshot_routes(),
        Route("/og/{name}", get_og, methods=["GET"]),
    ]
