"""Showcase routes: app-store screenshots (one preset, or all as a streamed ZIP) and OG images.

Every capture here goes through the grab queue's background lane and its result cache, like
icons: a repeated request is a cache hit that never touches the browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from oven import metrics
from oven.actors.grab_queue import GrabView
from oven.capture import piece_names, pieces_dir
from oven.grabs import GrabRequest
from oven.http._errors import ApiError
from oven.http._grab_client import GrabClient, validated
from oven.http._grabs import grab_and_wait, split_name
from oven.http._openapi import operation
from oven.jobs import JobState
from oven.showcase import (
    LAYOUTS,
    ONE_PIECE,
    OgCache,
    OgImage,
    OgRender,
    OgRenderer,
    Preset,
    ShowcaseSettings,
    ZipStream,
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


# -- app-store screenshots ---------------------------------------------------------------------


def _preset(settings: ShowcaseSettings, name: str) -> Preset:
    preset = settings.presets.get(name)
    if preset is None:
        raise ApiError(404, f"no screenshot preset {name!r}; presets are "
                       f"{', '.join(settings.presets)}", code="unknown_preset")
    return preset


def _preset_request(system: ActorSystem, piece: str, name: str, preset: Preset) -> dict[str, Any]:
    """The grab for one preset; a preset the [limits] refuse is named with the way out."""
    width, height = preset.css_size
    data = _still(piece, width, height, preset.density)
    try:
        grab = GrabRequest.model_validate(data)
    except ValidationError:
        return data  # a bad piece name: _validated answers it like any grab's
    violations = grab.limit_violations(system.settings.limits)
    if violations:
        field, rule = violations[0]
        raise ApiError(422, f"preset {name!r} captures {width}x{height} CSS px at density "
                       f"{preset.density}, and {field} must be {rule} ([limits]); raise its "
                       f"density in [showcase.presets.{name}] or the limit", code="invalid")
    return data


@operation("An app-store screenshot of a piece at a configured preset size (cached)",
           responses={200: "image/png"}, tags=["showcase"])
async def get_app_screenshot(request: Request) -> Response:
    system = _system(request)
    name = request.path_params["preset"]
    preset = _preset(system.settings.showcase, name)
    piece, _ = split_name(request.path_params["name"], ("png",))
    return await grab_and_wait(request, _preset_request(system, piece, name, preset), wait=True)


def _failure(view: GrabView, what: str, timeout_s: float) -> str | None:
    if view.state is JobState.COMPLETE:
        return None
    if view.state in (JobState.FAILED, JobState.CANCELLED):
        return f"{what}: grab {view.state.value}: {view.error}"
    return f"{what}: not finished within {timeout_s:g} s (still {view.state.value})"


@operation("Every screenshot preset of a piece as one ZIP, streamed as each PNG is ready",
           responses={200: "application/zip"}, tags=["showcase"])
async def get_app_screenshot_zip(request: Request) -> Response:
    system = _system(request)
    settings = system.settings
    piece, _ = split_name(request.path_params["name"], ("zip",))
    # Everything is checked before anything is submitted: a bad request starts no capture.
    checked = []
    for name, preset in settings.showcase.presets.items():
        grab, target = await validated(settings, _preset_request(system, piece, name, preset))
        checked.append((name, grab, target))
    client = GrabClient(system)
    # The jobs' own deadline bounds them; waiting past it could only see them fail.
    timeout_s = settings.queue.deadline_s + 5
    waits: dict[asyncio.Task[GrabView], str] = {}
    try:
        for name, grab, target in checked:
            accepted = await client.submit(grab, target)
            waits[asyncio.create_task(client.wait(accepted.view, timeout_s))] = name
        # The first PNG is awaited before the response starts, so the usual failure (the
        # piece itself fails) is still a JSON error and not a cut-off download.
        done, pending = await asyncio.wait(set(waits), return_when=asyncio.FIRST_COMPLETED)
        first = done.pop()
        ready = [first, *done]
        problem = _failure(first.result(), f"{piece} at preset {waits[first]}", timeout_s)
        if problem is not None:
            raise ApiError(422, problem, code="failed")
    except BaseException:
        # Only the waits stop: submitted captures finish and land in the cache.
        for task in waits:
            task.cancel()
        raise
    stream = _zip_members(client, piece, waits, ready, pending, timeout_s)
    return StreamingResponse(stream, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{piece}-app-screenshots.zip"',
        "Cache-Control": "no-store"})


async def _zip_members(client: GrabClient, piece: str,
                       waits: dict[asyncio.Task[GrabView], str],
                       ready: list[asyncio.Task[GrabView]],
                       pending: set[asyncio.Task[GrabView]],
                       timeout_s: float) -> AsyncIterator[bytes]:
    archive = ZipStream()
    try:
        while ready or pending:
            if not ready:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                ready = list(done)
            task = ready.pop(0)
            view = task.result()
            problem = _failure(view, f"{piece} at preset {waits[task]}", timeout_s)
            if problem is not None:
                # The status line is sent: all that is left is to cut the download short, so
                # the client sees a broken transfer rather than a ZIP quietly missing a size.
                log.warning("app-screenshots zip piece=%s aborted: %s", piece, problem)
                raise RuntimeError(problem)
            assert view.result is not None  # complete
            yield archive.open_member(f"{piece}-{waits[task]}.png", size=view.result.size)
            async with contextlib.aclosing(client.chunks(view.result)) as chunks:
                async for chunk in chunks:
                    yield archive.write(chunk)
            yield archive.close_member()
        yield archive.finish()
    finally:
        # A client that hangs up stops the waits; the captures finish and land in the cache.
        for task in pending:
            task.cancel()


# -- OG images ---------------------------------------------------------------------------------


async def _still_bytes(system: ActorSystem, piece: str, width: int, height: int) -> bytes:
    client = GrabClient(system)
    grab, target = await validated(system.settings, _still(piece, width, height))
    accepted = await client.submit(grab, target)
    timeout_s = system.settings.queue.deadline_s + 5
    view = await client.wait(accepted.view, timeout_s)
    problem = _failure(view, f"still of {piece!r}", timeout_s)
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
        Route("/app-screenshots/{preset}/{name}", get_app_screenshot, methods=["GET"]),
        Route("/app-screenshots/{name}", get_app_screenshot_zip, methods=["GET"]),
        Route("/og/{name}", get_og, methods=["GET"]),
    ]
