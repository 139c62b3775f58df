"""Turning a piece name or URL into the page to open, refusing what could reach inside (SSRF)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from oven.grabs._settings import PiecesSettings


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


def _origin(url: str) -> str:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = parts.port if parts.port not in (None, default) else None
    host = (parts.hostname or "").lower()
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not ip.is_global or ip.is_multicast


async def url_target(url: str, settings: PiecesSettings) -> str:
    """Check a raw URL against the allow-list and the address rules; returns it unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise TargetRefused("url: not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused(f"url: scheme {parts.scheme or '(none)'!r} is not allowed; "
                            "only http and https")
    if not parts.hostname:
        raise TargetRefused("url: has no host")
    origin = _origin(url)
    allowed = {_origin(o) for o in settings.allowed_origins}
    if origin not in allowed:
        raise TargetRefused(
            f"url: origin {origin} is not allowed; add it to [pieces] allowed_origins"
        )
    if settings.allow_private:
        return url
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise TargetRefused(f"url: host {parts.hostname!r} does not resolve") from None
    for info in infos:
        address = str(info[4][0])
        if is_private(address):
            raise TargetRefused(
                f"url: {parts.hostname} resolves to a private address ({address}); "
                "set [pieces] allow_private = true to allow it"
            )
    return url
