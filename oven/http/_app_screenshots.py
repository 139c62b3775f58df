"""App-store screenshots: one preset of a piece as a PNG, or every preset as a streamed ZIP.

Every capture goes through the grab queue's background lane and its result cache, like icons:
a repeated request is a cache hit that never touches the browser. `?force=true` forgets the
cached PNG first, so it is a capture every time it is allowed: at most once per
[compat.app_screenshots] force_interval_s for one piece at one preset (per instance), unless
the request carries the admin token. The old service's dashboard sends it unauthenticated from
a button, so a token cannot be required; the interval bounds what anyone can make oven redo,
and a force while the same capture runs joins it (single-flight) instead of adding one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from oven.actors.grab_queue import GrabView
from oven.actors.store import StoreClient
from oven.grabs import GrabRequest, capture_key
from oven.http._auth import holds_token
from oven.http._errors import ApiError
from oven.http._grab_client import GrabClient, validated
from oven.http._grabs import _accepted, _result_response, split_name
from oven.http._openapi import operation
from oven.jobs import JobState
from oven.showcase import Preset, ShowcaseSettings, ZipStream
from oven.system import ActorSystem

log = logging.getLogger(__name__)

TRUE = frozenset({"true", "1", "yes"})
# Forces remembered for their interval; past this many the oldest is forgotten first (each
# costs a capture to make, so the edge rate limit has long stopped a client that fills it).
MAX_FORCES = 10_000


def _system(request: Request) -> ActorSystem:
    system: ActorSystem = request.app.state.system
    return system


def grab_problem(view: GrabView, what: str, timeout_s: float) -> str | None:
    """Why a grab waited for did not give a file (None when it did)."""
    if view.state is JobState.COMPLETE:
        return None
    if view.state in (JobState.FAILED, JobState.CANCELLED):
        return f"{what}: grab {view.state.value}: {view.error}"
    return f"{what}: not finished within {timeout_s:g} s (still {view.state.value})"


def _preset(settings: ShowcaseSettings, name: str) -> Preset:
    preset = settings.presets.get(name)
    if preset is None:
        raise ApiError(404, f"no screenshot preset {name!r}; presets are "
                       f"{', '.join(settings.presets)}", code="unknown_preset")
    return preset


def _preset_request(system: ActorSystem, piece: str, name: str, preset: Preset) -> dict[str, Any]:
    """The grab for one preset; a preset the [limits] refuse is named with the way out."""
    width, height = preset.css_size
    data = {"piece": piece, "format": "png", "width": width, "height": height,
            "density": preset.density, "frames": 1, "lane": "background"}
    try:
        grab = GrabRequest.model_validate(data)
    except ValidationError:
        return data  # a bad piece name: `validated` answers it like any grab's
    violations = grab.limit_violations(system.settings.limits)
    if violations:
        field, rule = violations[0]
        raise ApiError(422, f"preset {name!r} captures {width}x{height} CSS px at density "
                       f"{preset.density}, and {field} must be {rule} ([limits]); raise its "
                       f"density in [showcase.presets.{name}] or the limit", code="invalid")
    return data


class ForceBook:
    """When each (piece, preset) was last forced, to allow one force per interval."""

    def __init__(self) -> None:
        self._last: OrderedDict[tuple[str, str], float] = OrderedDict()

    def take(self, key: tuple[str, str], interval_s: float) -> float:
        """0 and the force is recorded, or the seconds until `key` may be forced again."""
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < interval_s:
            return interval_s - (now - last)
        self._last[key] = now
        self._last.move_to_end(key)
        while len(self._last) > MAX_FORCES:
            self._last.popitem(last=False)
        return 0.0


def _may_force(request: Request, piece: str, name: str) -> None:
    system = _system(request)
    if holds_token(request, system.settings.server.admin_token):
        return
    interval = system.settings.compat.app_screenshots.force_interval_s
    if interval <= 0:
        return
    book: ForceBook | None = getattr(request.app.state, "screenshot_forces", None)
    if book is None:
        book = request.app.state.screenshot_forces = ForceBook()
    wait = book.take((piece, name), interval)
    if wait > 0:
        raise ApiError(429, f"{piece} at preset {name} was captured again less than "
                       f"[compat.app_screenshots] force_interval_s ({interval:g} s) ago; "
                       "force=true again later (or with the admin token)", code="too_soon",
                       retry_after_s=wait)


def _store(system: ActorSystem) -> StoreClient:
    return StoreClient(system.registry, timeout_s=system.settings.supervisor.ask_timeout_s)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in TRUE


@operation("An app-store screenshot of a piece at a configured preset size (cached; "
           "?force=true captures it again, ?download=true names it as an attachment)",
           responses={200: "image/png"}, tags=["showcase"],
           query={"force": {"type": "string"}, "download": {"type": "string"}})
async def get_app_screenshot(request: Request) -> Response:
    system = _system(request)
    settings = system.settings
    name = request.path_params["preset"]
    preset = _preset(settings.showcase, name)
    piece, _ = split_name(request.path_params["name"], ("png",))
    grab, target = await validated(settings, _preset_request(system, piece, name, preset))
    force = _flag(request, "force")
    if force:
        _may_force(request, piece, name)
        await _store(system).cache_delete(capture_key(grab, target,
                                                      settings.pieces.render_version))
    client = GrabClient(system)
    accepted = await client.submit(grab, target)
    view = await client.wait(accepted.view, settings.queue.wait_timeout_s)
    if view.state in (JobState.FAILED, JobState.CANCELLED):
        raise ApiError(422 if view.state is JobState.FAILED else 409,
                       f"grab {view.state.value}: {view.error}", code=view.state.value)
    if view.state is not JobState.COMPLETE:
        body = _accepted(view, accepted)
        return JSONResponse(body.model_dump(mode="json"), status_code=202,
                            headers={"Location": body.status_url or ""})
    response = await _result_response(client, view)
    # The old service's headers: its dashboard reads them.
    response.headers["X-Cache"] = ("HIT" if accepted.cached else
                                   "REGENERATED" if force else "MISS")
    response.headers["X-Screenshot-Preset"] = name
    response.headers["X-Screenshot-Dimensions"] = f"{preset.width}x{preset.height}"
    if force:
        response.headers["Cache-Control"] = "no-store, no-cache, must-revalidate"
    if _flag(request, "download"):
        response.headers["Content-Disposition"] = \
            f'attachment; filename="{piece}-{name}.png"'
    return response


@dataclass(frozen=True)
class ScreenshotState:
    """One preset of a piece: its settings, its category, and whether its PNG is cached."""

    name: str
    preset: Preset
    category: str
    cached: bool


async def screenshot_states(system: ActorSystem, piece: str) -> list[ScreenshotState]:
    """Every preset of `piece`, checked as its capture would be (a 4xx for a bad or unknown
    piece), with whether a request for it would be a cache hit. Captures nothing."""
    settings = system.settings
    store = _store(system)
    states = []
    for name, preset in settings.showcase.presets.items():
        grab, target = await validated(settings, _preset_request(system, piece, name, preset))
        key = capture_key(grab, target, settings.pieces.render_version)
        states.append(ScreenshotState(name, preset, settings.showcase.category_of(name),
                                      await store.cache_get(key) is not None))
    return states


async def app_screenshots_zip(request: Request, piece: str,
                              member: Callable[[str], str]) -> Response:
    """Every preset of `piece` as one streamed ZIP; `member(preset name)` names its PNG."""
    system = _system(request)
    settings = system.settings
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
        problem = grab_problem(first.result(), f"{piece} at preset {waits[first]}", timeout_s)
        if problem is not None:
            raise ApiError(422, problem, code="failed")
    except BaseException:
        # Only the waits stop: submitted captures finish and land in the cache.
        for task in waits:
            task.cancel()
        raise
    stream = _zip_members(client, piece, member, waits, ready, pending, timeout_s)
    return StreamingResponse(stream, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{piece}-app-screenshots.zip"',
        "Cache-Control": "no-store"})


async def _zip_members(client: GrabClient, piece: str, member: Callable[[str], str],
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
            problem = grab_problem(view, f"{piece} at preset {waits[task]}", timeout_s)
            if problem is not None:
                # The status line is sent: all that is left is to cut the download short, so
                # the client sees a broken transfer rather than a ZIP quietly missing a size.
                log.warning("app-screenshots zip piece=%s aborted: %s", piece, problem)
                raise RuntimeError(problem)
            assert view.result is not None  # complete
            yield archive.open_member(member(waits[task]), size=view.result.size)
            async with contextlib.aclosing(client.chunks(view.result)) as chunks:
                async for chunk in chunks:
                    yield archive.write(chunk)
            yield archive.close_member()
        yield archive.finish()
    finally:
        # A client that hangs up stops the waits; the captures finish and land in the cache.
        for task in pending:
            task.cancel()


@operation("Every screenshot preset of a piece as one ZIP, streamed as each PNG is ready",
           responses={200: "application/zip"}, tags=["showcase"])
async def get_app_screenshot_zip(request: Request) -> Response:
    piece, _ = split_name(request.path_params["name"], ("zip",))
    return await app_screenshots_zip(request, piece, lambda name: f"{piece}-{name}.png")


def app_screenshot_routes() -> list[BaseRoute]:
    return [
        Route("/app-screenshots/{preset}/{name}", get_app_screenshot, methods=["GET"]),
        Route("/app-screenshots/{name}", get_app_screenshot_zip, methods=["GET"]),
    ]
