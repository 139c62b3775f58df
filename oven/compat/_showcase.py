"""The old service's OG images and backdrop: /kidlisp-og.png, /kidlisp-og, /kidlisp-og/status,
/kidlisp-og/preview, /notepat-og.png, /kidlisp-backdrop.webp and /kidlisp-backdrop.

The OG images are oven's own OG renderer (oven.http.render_og: stills through the grab queue's
background lane, composed with Pillow, one single-flight render per image, layout and UTC day,
an older day's image answered at once while today's renders), each image in its own cache
directory under [showcase] og_cache_dir. The backdrop is one grab through the grab queue, whose
result cache and single-flight make a crawler storm one capture. [compat.og] names the pieces.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from oven import metrics
from oven.config import Settings
from oven.errors import Refusal
from oven.http import (
    ApiError,
    GrabClient,
    LimitsExceeded,
    og_renderer,
    operation,
    render_og,
    seconds_to_midnight,
    validated,
)
from oven.jobs import JobState
from oven.lanes import Lane
from oven.showcase import LAYOUTS, ONE_PIECE, OgImage, OgRenderer, pieces_for, utc_today
from oven.system import ActorSystem

KIDLISP, NOTEPAT = "kidlisp", "notepat"
PNG_LAYOUT = "mosaic"  # the old /kidlisp-og.png's default
PAGE_LAYOUT = "featured"  # the old /kidlisp-og's default
IMAGES = "/kidlisp-og/images"
# The old service's Cache-Control: an hour for today's redirect, five minutes for the fallback
# (yesterday's), a week for the notepat image.
TODAY_MAX_AGE_S, FALLBACK_MAX_AGE_S, NOTEPAT_MAX_AGE_S = 3600, 300, 7 * 86400
DAY_IMAGE_MAX_AGE_S = 86400  # a dated image never changes
X_CACHE = {"fresh": "HIT", "stale": "STALE", "waited": "MISS"}


def _system(request: Request) -> ActorSystem:
    system: ActorSystem = request.app.state.system
    return system


def _layout(request: Request, default: str) -> str:
    # The old service read `layout || default`: an empty one is the default.
    layout = request.query_params.get("layout") or default
    if layout not in LAYOUTS:
        raise ApiError(400, f"no OG layout {layout[:64]!r}; layouts are {', '.join(LAYOUTS)}",
                       code="unknown_layout", extra={"layouts": list(LAYOUTS)})
    return layout


def _renderer(request: Request, image: str) -> OgRenderer:
    system = _system(request)
    directory = system.settings.resolve(system.settings.showcase.og_cache_dir) / image

    async def render(layout: str, day: dt.date) -> bytes:
        og = system.settings.compat.og  # read per render: a reload may change the pieces
        if image == KIDLISP:
            return await render_og(system, layout, og.kidlisp_pieces, day,
                                   title=og.kidlisp_title)
        return await render_og(system, layout, og.notepat_pieces, day, title=og.notepat_title)

    return og_renderer(request, image, directory, render)


async def _current(request: Request, image: str, layout: str) -> OgImage:
    # RenderFailed and StillRendering are Refusals: 503 with Retry-After (oven.http).
    wait_s = _system(request).settings.showcase.og_wait_timeout_s
    return await _renderer(request, image).current(layout, today=utc_today(), wait_s=wait_s)


def _image_headers(name: str, image: OgImage, max_age: int) -> dict[str, str]:
    metrics.OG_SERVED.labels(layout=f"{name}:{image.layout}", freshness=image.freshness).inc()
    return {"Cache-Control": f"public, max-age={max_age}", "X-Cache": X_CACHE[image.freshness],
            "X-Oven-Og-Date": image.day.isoformat(), "X-Oven-Og-Freshness": image.freshness}


def _redirect(image: OgImage, *, fresh_status: int) -> Response:
    """To the dated image: a new URL each day, so caches in front keep each image whole."""
    if image.freshness == "stale":
        status, max_age = 302, FALLBACK_MAX_AGE_S
    else:
        # Never cached past midnight: tomorrow this URL means tomorrow's image.
        status = fresh_status
        max_age = min(TODAY_MAX_AGE_S, seconds_to_midnight(dt.datetime.now(dt.UTC)))
    return RedirectResponse(f"{IMAGES}/{image.layout}-{image.day.isoformat()}.png",
                            status_code=status, headers=_image_headers(KIDLISP, image, max_age))


@operation("The old KidLisp OG image: a redirect to today's stored image (?layout=featured, "
           "mosaic, filmstrip, code-split), or at once to the latest older one while today's "
           "renders", responses={301: None, 302: None, 400: None, 503: None}, tags=["compat"],
           query={"layout": {"type": "string", "enum": list(LAYOUTS)}})
async def get_kidlisp_og_png(request: Request) -> Response:
    layout = _layout(request, PNG_LAYOUT)
    return _redirect(await _current(request, KIDLISP, layout), fresh_status=301)


@operation("One day's KidLisp OG image ({layout}-{YYYY-MM-DD}.png), where /kidlisp-og.png "
           "redirects", responses={200: "image/png", 404: None}, tags=["compat"])
async def get_kidlisp_og_day(request: Request) -> Response:
    name: str = request.path_params["name"]
    stem = name.removesuffix(".png")
    layout, day = stem[:-11], _day(stem[-10:]) if stem[-11:-10] == "-" else None
    if name == stem or layout not in LAYOUTS or day is None:
        raise ApiError(404, f"no OG image {name[:80]!r}: expected {{layout}}-{{YYYY-MM-DD}}.png "
                       f"with a layout of {', '.join(LAYOUTS)}", code="unknown_image")
    renderer = _renderer(request, KIDLISP)
    try:
        content = await asyncio.to_thread(renderer.cache.path(layout, day).read_bytes)
    except FileNotFoundError:
        # Pruned since a redirect here was cached: the latest image, never a redirect back
        # (a client holding a cached 301 to here would go round in circles).
        showcase = _system(request).settings.showcase
        image, content = await renderer.read(layout, today=utc_today(),
                                             wait_s=showcase.og_wait_timeout_s)
        return Response(content, media_type="image/png",
                        headers=_image_headers(KIDLISP, image, FALLBACK_MAX_AGE_S))
    image = OgImage(layout, day, renderer.cache.path(layout, day),
                    "fresh" if day == utc_today() else "stale")
    headers = _image_headers(KIDLISP, image, DAY_IMAGE_MAX_AGE_S)
    headers["Cache-Control"] += ", immutable"
    return Response(content, media_type="image/png", headers=headers)


def _day(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def _wants_html(request: Request) -> bool:
    # A browser opening the URL asks for text/html; an <img> tag or a crawler fetching the
    # og:image asks for images or */*, and gets the image as the old service answered.
    return "text/html" in request.headers.get("accept", "")


@operation("The old /kidlisp-og: an HTML page whose og:image is /kidlisp-og.png (asked with "
           "Accept: text/html), else the image by redirect like /kidlisp-og.png",
           responses={200: "text/html", 302: None, 400: None, 503: None}, tags=["compat"],
           query={"layout": {"type": "string", "enum": list(LAYOUTS)}})
async def get_kidlisp_og(request: Request) -> Response:
    layout = _layout(request, PAGE_LAYOUT)
    if _wants_html(request):
        og = _system(request).settings.compat.og
        page = _og_page(request, og.kidlisp_title, f"/kidlisp-og.png?layout={layout}",
                        "image/png", _system(request).settings)
        return HTMLResponse(page, headers={
            "Vary": "Accept", "Cache-Control": f"public, max-age={FALLBACK_MAX_AGE_S}"})
    response = _redirect(await _current(request, KIDLISP, layout), fresh_status=302)
    response.headers["Vary"] = "Accept"
    return response


def _og_page(request: Request, title: str, image: str, media_type: str,
             settings: Settings) -> str:
    # Crawlers need an absolute og:image. The Host header is the client's to choose, so all
    # that goes into the page is escaped.
    base = str(request.base_url).rstrip("/")
    size = ""
    if media_type == "image/png":
        showcase = settings.showcase
        size = (f'<meta property="og:image:width" content="{showcase.og_width}">\n'
                f'<meta property="og:image:height" content="{showcase.og_height}">\n')
    url = escape(base + image)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{escape(title)}</title>
<meta property="og:title" content="{escape(title)}">
<meta property="og:type" content="website">
<meta property="og:url" content="{escape(str(request.url))}">
<meta property="og:image" content="{url}">
<meta property="og:image:type" content="{media_type}">
{size}<meta name="twitter:card" content="summary_large_image">
<meta name="twitter:image" content="{url}">
<style>html,body{{margin:0;height:100%;background:#101018}}
img{{display:block;width:100%;height:100%;object-fit:contain}}</style></head>
<body><img src="{escape(image)}" alt="{escape(title)}"></body></html>
"""


@operation("The old /kidlisp-og/status: what the KidLisp OG cache holds, per layout",
           responses={200: None}, tags=["compat"])
async def get_kidlisp_og_status(request: Request) -> Response:
    system = _system(request)
    og = system.settings.compat.og
    renderer = _renderer(request, KIDLISP)
    today = utc_today()
    tomorrow = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), dt.UTC)
    layouts: dict[str, Any] = {}
    for layout in LAYOUTS:
        image = renderer.cache.latest(layout, today=today)
        generated = None
        if image is not None:
            try:
                mtime = image.path.stat().st_mtime
                generated = dt.datetime.fromtimestamp(mtime, dt.UTC).isoformat()
            except FileNotFoundError:
                image = None  # pruned between the listing and the look
        shown = pieces_for(layout, og.kidlisp_pieces, today)
        layouts[layout] = {
            "date": image.day.isoformat() if image else None,
            "fresh": image is not None and image.day == today,
            "url": f"{IMAGES}/{layout}-{image.day.isoformat()}.png" if image else None,
            "generatedAt": generated,
            "rendering": renderer.running(layout),
            "lastError": renderer.last_failure(layout),
            "pieces": shown,
        }
    main = layouts[PNG_LAYOUT]
    featured = pieces_for(ONE_PIECE[0], og.kidlisp_pieces, today)[0]
    return JSONResponse({
        # The old service's fields first (of its default image), then oven's per layout.
        "cached": main["fresh"],
        "url": main["url"],
        "expires": tomorrow.isoformat() if main["fresh"] else None,
        "generatedAt": main["generatedAt"],
        "featuredPiece": {"code": featured.removeprefix("$")},
        "availableLayouts": list(LAYOUTS),
        "usage": {
            "recommended": "/kidlisp-og.png (instant, for og:image tags)",
            "withLayout": "/kidlisp-og.png?layout=mosaic",
            "page": "/kidlisp-og (HTML with og: tags; an image for anything but a browser)",
        },
        "note": "Use /kidlisp-og.png in og:image tags: it redirects at once to a stored image.",
        "layouts": layouts,
    }, headers={"Cache-Control": "no-store"})


@operation("The old /kidlisp-og/preview: every OG layout, the notepat image and the backdrop "
           "on one page", responses={200: "text/html"}, tags=["compat"])
async def get_kidlisp_og_preview(request: Request) -> Response:
    sections = "\n".join(
        f'<section><h2>{layout}</h2><p><a href="/kidlisp-og.png?layout={layout}">'
        f'/kidlisp-og.png?layout={layout}</a></p>'
        f'<img src="/kidlisp-og.png?layout={layout}" alt="{layout}" loading="lazy"></section>'
        for layout in LAYOUTS)
    return HTMLResponse(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>OG images</title>
<style>body{{font-family:monospace;background:#1a1a2e;color:#eee;padding:20px;max-width:1300px;
margin:auto}}h2{{color:#ffaa00}}a{{color:#88ccff}}img{{max-width:100%;border:2px solid #444}}
</style></head><body>
<h1>OG images</h1><p><a href="/kidlisp-og/status">cache status (JSON)</a></p>
{sections}
<section><h2>notepat</h2><img src="/notepat-og.png" alt="notepat" loading="lazy"></section>
<section><h2>backdrop</h2><p><a href="/kidlisp-backdrop">/kidlisp-backdrop</a></p>
<img src="/kidlisp-backdrop.webp" alt="backdrop" loading="lazy"></section>
</body></html>
""", headers={"Cache-Control": "no-store"})


@operation("The old notepat OG image: the PNG bytes themselves (some crawlers follow no "
           "redirect for og:image), rendered once a day",
           responses={200: "image/png", 503: None}, tags=["compat"])
async def get_notepat_og(request: Request) -> Response:
    system = _system(request)
    showcase = system.settings.showcase
    layout = system.settings.compat.og.notepat_layout
    image, content = await _renderer(request, NOTEPAT).read(
        layout, today=utc_today(), wait_s=showcase.og_wait_timeout_s)
    max_age = showcase.og_stale_max_age_s if image.freshness == "stale" else NOTEPAT_MAX_AGE_S
    return Response(content, media_type="image/png",
                    headers=_image_headers(NOTEPAT, image, max_age))


def _backdrop_piece(settings: Settings, day: dt.date) -> str:
    pieces = settings.compat.og.backdrop_pieces
    return pieces[day.toordinal() % len(pieces)]


@operation("The old KidLisp backdrop: an animated WebP of the day's backdrop piece, one grab "
           "through the queue (cached; a storm of requests is one capture)",
           responses={200: "image/webp", 302: None, 503: None}, tags=["compat"])
async def get_backdrop_webp(request: Request) -> Response:
    system = _system(request)
    settings = system.settings
    og, showcase = settings.compat.og, settings.showcase
    piece = _backdrop_piece(settings, utc_today())
    data = {"piece": piece, "format": "webp", "width": og.backdrop_size,
            "height": og.backdrop_size, "density": og.backdrop_density,
            "frames": og.backdrop_frames, "fps": og.backdrop_fps, "lane": Lane.BACKGROUND}
    try:
        grab, target = await validated(settings, data)
    except ApiError as exc:
        # Nothing in this request is the client's: a refusal here is the configuration's.
        where = "[limits]" if isinstance(exc, LimitsExceeded) else "[pieces]"
        raise ApiError(503, f"the backdrop set in [compat.og] is refused: {exc.message} (see "
                       f"[compat.og] and {where})", code="misconfigured",
                       retry_after_s=showcase.og_retry_s) from None
    client = GrabClient(system)
    try:
        accepted = await client.submit(grab, target)
    except Refusal as exc:  # a full queue, a frozen piece: not the client's doing either
        raise ApiError(503, f"the backdrop cannot be made now: {exc}", code="render_failed",
                       retry_after_s=exc.retry_after_s) from None
    view = await client.wait(accepted.view, showcase.og_wait_timeout_s)
    if view.state in (JobState.FAILED, JobState.CANCELLED):
        raise ApiError(503, f"the backdrop ({piece}) {view.state.value}: {view.error}",
                       code="render_failed", retry_after_s=showcase.og_retry_s)
    if view.state is not JobState.COMPLETE or view.result is None:
        raise ApiError(503, f"the backdrop is still rendering after "
                       f"{showcase.og_wait_timeout_s:g} s", code="rendering", retry_after_s=5)
    headers = {"Cache-Control": f"public, max-age={TODAY_MAX_AGE_S}",
               "X-Cache": "HIT" if accepted.cached else "MISS", "X-Backdrop-Piece": piece}
    location = await client.locate(view.result)
    if location.path is not None and location.path.is_file():
        return FileResponse(location.path, media_type="image/webp", headers=headers)
    if location.url is not None:  # a bucket: the old service also redirected to its CDN
        return RedirectResponse(location.url, status_code=302, headers=headers)
    raise ApiError(503, "the stored backdrop is missing", code="render_failed",
                   retry_after_s=1)


@operation("The old /kidlisp-backdrop: a page showing the backdrop (asked with Accept: "
           "text/html), else a redirect to /kidlisp-backdrop.webp",
           responses={200: "text/html", 302: None}, tags=["compat"])
async def get_backdrop(request: Request) -> Response:
    settings = _system(request).settings
    headers = {"Vary": "Accept", "X-Backdrop-Piece": _backdrop_piece(settings, utc_today()),
               "Cache-Control": f"public, max-age={FALLBACK_MAX_AGE_S}"}
    if _wants_html(request):
        page = _og_page(request, f"{settings.compat.og.kidlisp_title} backdrop",
                        "/kidlisp-backdrop.webp", "image/webp", settings)
        return HTMLResponse(page, headers=headers)
    return RedirectResponse("/kidlisp-backdrop.webp", status_code=302, headers=headers)


def routes() -> list[BaseRoute]:
    return [
        Route("/kidlisp-og.png", get_kidlisp_og_png, methods=["GET"]),
        Route("/kidlisp-og", get_kidlisp_og, methods=["GET"]),
        Route("/kidlisp-og/status", get_kidlisp_og_status, methods=["GET"]),
        Route("/kidlisp-og/preview", get_kidlisp_og_preview, methods=["GET"]),
        Route(IMAGES + "/{name}", get_kidlisp_og_day, methods=["GET"]),
        Route("/notepat-og.png", get_notepat_og, methods=["GET"]),
        Route("/kidlisp-backdrop.webp", get_backdrop_webp, methods=["GET"]),
        Route("/kidlisp-backdrop", get_backdrop, methods=["GET"]),
    ]
