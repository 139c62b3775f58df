"""Turning a piece name or URL into the page to open, refusing what could reach inside (SSRF)."""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

from oven.capture import is_private
from oven.grabs._settings import PiecesSettings

__all__ = ["is_private"]  # re-exported from oven.capture: one rule for the edge and the page


class TargetRefused(Exception):
    """The URL may not be captured; the message says why and what setting would allow it."""


class UnknownPiece(TargetRefused):
    """A bundled piece name that does not exist."""


BUNDLED_TEMPLATE = "http://pieces.oven.internal/{piece}/"


def piece_target(piece: str, settings: PiecesSettings) -> str:
    """The URL of a piece; bundled pieces are checked here so a typo never reaches Chromium."""
    if settings.url_template == BUNDLED_TEMPLATE:
        from oven.capture import piece_names

        known = piece_names()
        if piece not in known:
            raise UnknownPiece(f"piece: no piece named {piece!r}; bundled pieces are "
                               f"{', '.join(known)}")
    return settings.url_template.format(piece=piece)


def origin_of(url: str) -> str:
    """scheme://host[:port], host lowered and default ports dropped: how allow-lists compare."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = parts.port if parts.port not in (None, default) else None
    host = (parts.hostname or "").lower()
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


async def url_target(url: str, settings: PiecesSettings) -> str:
    """Check a raw URL against the allow-list and the address rules; returns it unchanged."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise TargetRefused(f"url: not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused(f"url: scheme {parts.scheme or '(none)'!r} is not allowed; "
                            "only http and https")
    if not parts.hostname:
        raise TargetRefused("url: has no host")
    origin = origin_of(url)
    allowed = {origin_of(o) for o in settings.allowed_origins}
    if origin not in allowed:
        raise TargetRefused(
            f"url: origin {origin} is not allowed; add it to [pieces] allowed_origins"
        )
    if settings.allow_private:
        return url
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):  # gaierror, or a name IDNA cannot encode
        raise TargetRefused(f"url: host {parts.hostname!r} does not resolve") from None
    for info in infos:
        address = str(info[4][0])
        if is_private(address):
            raise TargetRefused(
                f"url: {parts.hostname} resolves to a private address ({address}); "
                "set [pieces] allow_private = true to allow it"
            )
    return url
