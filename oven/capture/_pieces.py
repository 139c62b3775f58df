"""Bundled pieces, served to Chromium from `oven/pieces/` through a context route, no HTTP server.

Only the dedicated origin is routed, so requests to any other host never cross into Python.
"""

from __future__ import annotations

import functools
import mimetypes
from pathlib import Path
from urllib.parse import unquote, urlsplit

from playwright.async_api import Route

PIECES_ORIGIN = "http://pieces.oven.internal"
PIECES_ROUTE = f"{PIECES_ORIGIN}/**"


def pieces_dir() -> Path:
    """Directory holding the bundled pieces, one `<name>/index.html` each."""
    return Path(__file__).resolve().parent.parent / "pieces"


@functools.cache
def _bundled() -> tuple[str, ...]:
    return tuple(sorted(p.parent.name for p in pieces_dir().glob("*/index.html")))


def piece_names() -> list[str]:
    """Names of the bundled pieces, sorted (read once: they ship with the package, and every
    submission asks, on the HTTP loop)."""
    return list(_bundled())


def piece_url(name: str, query: str = "") -> str:
    """URL of a bundled piece, e.g. `piece_url("anim")`."""
    return f"{PIECES_ORIGIN}/{name}/" + (f"?{query}" if query else "")


def _resolve(url: str) -> Path | None:
    root = pieces_dir()
    rel = unquote(urlsplit(url).path).lstrip("/")
    path = (root / rel).resolve()
    if not path.is_relative_to(root):
        return None  # ../ escapes are answered 404, never read
    if path.is_dir():
        path = path / "index.html"
    return path if path.is_file() else None


async def serve_piece(route: Route) -> None:
    """Route handler: fulfil a request on PIECES_ORIGIN from the pieces directory."""
    path = _resolve(route.request.url)
    if path is None:
        await route.fulfill(status=404, content_type="text/plain", body="no such piece file\n")
        return
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    # Pieces are a few KB; a blocking read costs less than a thread hop.
    await route.fulfill(status=200, content_type=content_type, body=path.read_bytes())
