"""The old service's app-screenshot routes: its page, its ZIP and its JSON.

GET /app-screenshots/{preset}/{piece}.png?force=true is oven's own route (oven.http), which
reads force and download and sends the old X-Cache and X-Screenshot-* headers. These three are
the ones oven had no room for: the page of presets (`?piece=`) with an image and a regenerate
link each, every preset as a ZIP with a folder per category, and each preset's size, category,
URL and whether it is cached, as JSON. None of them captures by itself: the page's images and
the ZIP go through oven's app-screenshot captures (the grab queue's background lane and cache).
"""

from __future__ import annotations

import html
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from oven.http import ScreenshotState, app_screenshots_zip, operation, screenshot_states
from oven.system import ActorSystem

_STYLE = """body{font:15px/1.4 system-ui,sans-serif;margin:2em;background:#111;color:#eee}
a{color:#9cf}ul{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:1.5em}
li{background:#222;padding:1em;border-radius:6px}img{max-width:240px;max-height:240px;
display:block;margin:.5em 0;background:#000}small{color:#aaa}"""


def _system(request: Request) -> ActorSystem:
    system: ActorSystem = request.app.state.system
    return system


def _label(name: str) -> str:
    return name.replace("-", " ").replace("_", " ").title()


def _path_piece(piece: str) -> str:
    """`piece` as a path segment (a checked piece name needs no escaping; this is the belt)."""
    return quote(piece, safe="$")


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><html><head><meta charset=\"utf-8\"><title>"
                        f"{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
                        f"{body}</body></html>")


_FORM = ('<form method="get" action="/app-screenshots"><label>Piece <input name="piece" '
         'required maxlength="64"></label> <button>Show its screenshots</button></form>')


def _item(piece: str, state: ScreenshotState) -> str:
    url = f"/app-screenshots/{quote(state.name)}/{_path_piece(piece)}.png"
    preset = state.preset
    return (f"<li><b>{html.escape(_label(state.name))}</b> <small>{preset.width}x"
            f"{preset.height}, {html.escape(state.category)}"
            f"{'' if state.cached else ', not captured yet'}</small>"
            f'<img src="{html.escape(url)}" alt="{html.escape(state.name)}" loading="lazy">'
            f'<a href="{html.escape(url)}?force=true">regenerate</a> · '
            f'<a href="{html.escape(url)}?download=true">download</a></li>')


@operation("The old service's page of a piece's app-store screenshots (?piece=), each with a "
           "regenerate link", responses={200: "text/html"}, tags=["compat"],
           query={"piece": {"type": "string"}})
async def get_page(request: Request) -> Response:
    piece = request.query_params.get("piece", "")
    if not piece:
        return _page("App screenshots", f"<h1>App screenshots</h1>{_FORM}")
    states = await screenshot_states(_system(request), piece)  # a 4xx for a bad piece
    shown = html.escape(piece)
    path = _path_piece(piece)
    items = "".join(_item(piece, state) for state in states)
    return _page(f"App screenshots of {piece}", (
        f"<h1>App screenshots of {shown}</h1>{_FORM}"
        f'<p><a href="/app-screenshots/download/{path}">Download every preset (ZIP)</a> · '
        f'<a href="/api/app-screenshots/{path}">as JSON</a></p><ul>{items}</ul>'))


@operation("Every preset of a piece as one ZIP, a folder per category "
           "({category}/{piece}-{preset}.png), streamed as each PNG is ready",
           responses={200: "application/zip"}, tags=["compat"])
async def get_download(request: Request) -> Response:
    piece = request.path_params["piece"]
    showcase = _system(request).settings.showcase
    return await app_screenshots_zip(
        request, piece, lambda name: f"{showcase.category_of(name)}/{piece}-{name}.png")


@operation("Each preset of a piece's screenshots: size, density, label, category, whether it "
           "is cached, and its URLs; captures nothing", tags=["compat"])
async def get_metadata(request: Request) -> Response:
    piece = request.path_params["piece"]
    states = await screenshot_states(_system(request), piece)
    path = _path_piece(piece)
    presets = {}
    for state in states:
        url = f"/app-screenshots/{state.name}/{path}.png"
        presets[state.name] = {
            "width": state.preset.width, "height": state.preset.height,
            "density": state.preset.density, "label": _label(state.name),
            "category": state.category, "cached": state.cached,
            "url": url, "downloadUrl": f"{url}?download=true"}
    return JSONResponse({"piece": piece, "presets": presets,
                         "zipUrl": f"/app-screenshots/download/{path}",
                         "dashboardUrl": f"/app-screenshots?piece={quote(piece)}"})


def routes() -> list[BaseRoute]:
    # Before oven's /app-screenshots/{preset}/{name}, which would read "download" as a preset.
    return [
        Route("/app-screenshots", get_page, methods=["GET"]),
        Route("/app-screenshots/download/{piece}", get_download, methods=["GET"]),
        Route("/api/app-screenshots/{piece}", get_metadata, methods=["GET"]),
    ]
