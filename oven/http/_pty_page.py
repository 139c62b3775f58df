"""The web terminal page at /pty: xterm.js (vendored, never fetched at run time) on the PTY API.

The page holds no secret, so serving it needs no token; every API call it makes carries one.
Its static files live under /pty/static, beside (not over) the /pty/sessions routes.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from oven.http._openapi import operation

STATIC_DIR = Path(__file__).parent / "static" / "pty"

# The token may sit in the page's query string: never send it on as a Referer, and keep the
# page out of frames and shared caches.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self' ws: wss:; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
    ),
}


@operation("The web terminal page (token from ?token= or a form)",
           responses={200: "text/html"}, tags=["pty"])
async def pty_page(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


def pty_page_routes() -> list[BaseRoute]:
    return [
        Route("/pty", pty_page, methods=["GET"]),
        Mount("/pty/static", app=StaticFiles(directory=STATIC_DIR), name="pty-static"),
    ]
