"""Rendering a piece live and its bundle offline in real Chromium, for pixel comparison."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops
from playwright.sync_api import Browser, Route

from oven.capture import PIECES_ORIGIN, VIRTUAL_CLOCK_JS, pieces_dir

VIEWPORT = {"width": 480, "height": 320}
CLOCK_FRAMES = 6


@dataclass
class Render:
    image: Image.Image
    state: dict[str, Any]
    network: list[str] = field(default_factory=list)  # requests that tried to leave
    errors: list[str] = field(default_factory=list)


def _serve_bundled_piece(route: Route) -> None:
    """oven's bundled pieces, live, as the browser pool serves them (a route, no server)."""
    path = route.request.url.removeprefix(PIECES_ORIGIN).split("?")[0].lstrip("/")
    target = pieces_dir() / path
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        route.fulfill(status=404, body="no such piece file")
        return
    kind = "text/html" if target.suffix == ".html" else "application/octet-stream"
    route.fulfill(status=200, content_type=kind, body=target.read_bytes())


def render(browser: Browser, url: str, *, offline: bool, clock: bool,
           state: str = "({order: window.order, marks: window.marks})") -> Render:
    """The first frame of `url` once `window.ovenReady` is true. `offline`: every network
    request is aborted (and recorded); `clock`: time is virtual, moved CLOCK_FRAMES frames, so
    an animated piece draws the same frame in both renders."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    result = Render(Image.new("RGB", (1, 1)), {})
    try:
        if offline:
            def refuse(route: Route) -> None:
                if route.request.url == url:  # the bundle's own file
                    route.continue_()
                    return
                result.network.append(route.request.url)
                route.abort()
            context.route("**/*", refuse)
        else:
            context.route(f"{PIECES_ORIGIN}/**", _serve_bundled_piece)
        page = context.new_page()
        page.on("pageerror", lambda error: result.errors.append(str(error)))
        if clock:
            # oven's own virtual clock: time moves only when told, so both renders draw
            # the same frames at the same page times however busy the machine is.
            context.add_init_script(VIRTUAL_CLOCK_JS)
        page.goto(url)
        if clock:
            page.evaluate(f"for (let i = 0; i < {CLOCK_FRAMES}; i++) "
                          "__ovenClock.advance(1000 / 60)")
        page.wait_for_function("window.ovenReady === true", timeout=20_000)
        result.image = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
        result.state = page.evaluate(state)
    finally:
        context.close()
    return result


def open_bundle(browser: Browser, html: bytes, directory: Path, name: str, *,
                clock: bool, state: str = "({order: window.order, marks: window.marks})"
                ) -> Render:
    """The bundle as a user opens a downloaded file: from disk, with no network at all."""
    path = directory / f"{name}.html"
    path.write_bytes(html)
    return render(browser, path.as_uri(), offline=True, clock=clock, state=state)


def differing_pixels(a: Image.Image, b: Image.Image) -> int:
    assert a.size == b.size, (a.size, b.size)
    diff = ImageChops.difference(a, b).convert("L")
    return sum(diff.histogram()[1:])
