"""Turning a piece name or URL into the page to open, refusing what could reach inside (SSRF).

URLs are read the way Chromium reads them (the WHATWG URL standard, through `ada-url`): the
allow-list is checked against the origin of *that* reading, and the URL handed on is its
re-serialisation, so the check and the browser can never see two different hosts (Python's
`urlsplit` reads `http://evil.example\\@allowed/` as host `allowed`; a browser goes to
`evil.example`). Two forms are refused although the browser would read them unambiguously:
userinfo (a capture never needs credentials in its URL, and `evil@allowed` is the classic
confusion), and URLs whose host an RFC 3986 reader (urlsplit, httpx) would read differently,
because not every caller fetches the re-serialised URL (bake archives and webhooks go through
httpx).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from ada_url import URL, HostType

from oven.capture import is_private
from oven.grabs._settings import PiecesSettings

__all__ = ["is_private"]  # re-exported from oven.capture: one rule for the edge and the page

DEFAULT_PORTS = {"http": 80, "https": 443}
# What WHATWG trims from both ends of a URL (str.strip would also trim Unicode spaces).
_C0_OR_SPACE = "".join(map(chr, range(0x21)))


class TargetRefused(Exception):
    """The URL may not be captured; the message says why and what setting would allow it."""


class UnknownPiece(TargetRefused):
    """A bundled piece name that does not exist."""


BUNDLED_TEMPLATE = "http://pieces.oven.internal/{piece}/"
_BUNDLED_NAMED = "http://pieces.oven.internal/{"


@dataclass(frozen=True)
class WebUrl:
    """An http(s) URL as a browser reads it."""

    href: str  # the WHATWG serialisation: what the browser will request
    scheme: str
    host: str  # a lowercase name (punycode), an IPv4 or an IPv6 address without brackets
    port: int  # the effective port, default ports included
    origin: str  # scheme://host[:port], default ports dropped
    userinfo: bool  # it names a user or password (even empty ones: "http://:@host/")

    def refuse_userinfo(self, field: str) -> None:
        """Credentials in a URL are refused, checked after the origin and address rules so a
        refusal names the graver reason first."""
        if self.userinfo:
            raise TargetRefused(f"{field}: a user name or password in the URL is not allowed")


class CodeTemplateUnset(TargetRefused):
    """A KidLisp code asked of a service that has no URL for codes."""


CODE_PREFIX = "$"


def piece_target(piece: str, settings: PiecesSettings, *, density: float = 1.0) -> str:
    """The URL of a piece or a KidLisp code (`$code`), made from its template; bundled pieces
    are checked here so a typo never reaches Chromium.

    Names are checked by GrabRequest before they get here; the URL made is read as the
    browser reads it all the same, so a template and a name can never combine into another
    host, credentials or a non-http(s) URL.
    """
    if piece.startswith(CODE_PREFIX):
        if settings.code_template is None:
            raise CodeTemplateUnset(
                f"piece: {piece!r} is a KidLisp code, and this service has no URL for codes; "
                "set [pieces] code_template (e.g. \"https://aesthetic.computer/${code}\")")
        template, fields = settings.code_template, {"code": piece[len(CODE_PREFIX):]}
    else:
        template, fields = settings.url_template, {"piece": piece}
    if template.startswith(_BUNDLED_NAMED):  # the name is the bundled piece's folder
        from oven.capture import piece_names

        known = piece_names()
        name = next(iter(fields.values()))
        if name not in known:
            raise UnknownPiece(f"piece: no piece named {piece!r}; bundled pieces are "
                               f"{', '.join(known)}")
    url = read_web_url(template.format(**fields, density=f"{density:g}"), field="piece")
    url.refuse_userinfo("piece")
    return url.href


def origin_of(url: str) -> str:
    """The WHATWG origin of `url` (scheme://host[:port], lowercased, punycode, IP literals in
    canonical form, default ports dropped): how allow-lists compare. "null" for anything
    without one (not a URL, or a scheme like data:), which matches no http(s) origin."""
    try:
        return str(URL(url).origin)
    except ValueError:
        return "null"


def read_web_url(url: str, *, field: str = "url") -> WebUrl:
    """Read an http(s) URL as a browser does; raise TargetRefused (naming `field`) for what
    is not one or reads differently to other parsers."""
    try:
        parsed = URL(url)
    except ValueError:
        raise TargetRefused(f"{field}: not a valid URL") from None
    scheme = parsed.protocol.removesuffix(":")
    if scheme not in DEFAULT_PORTS:
        raise TargetRefused(f"{field}: scheme {scheme or '(none)'!r} is not allowed; "
                            "only http and https")
    host = parsed.hostname
    if parsed.host_type == HostType.IPV6:
        host = host.strip("[]")
    port = int(parsed.port) if parsed.port else DEFAULT_PORTS[scheme]
    legacy = _legacy_reading(url, scheme)
    if legacy is None:
        raise TargetRefused(
            f"{field}: has no host where other URL parsers look for one (a browser reads "
            f"{host!r}); write it plainly, as {parsed.href}")
    if legacy != (host, port):
        raise TargetRefused(
            f"{field}: ambiguous URL: a browser reads host {host!r} port {port}, other URL "
            f"parsers {legacy[0]!r} port {legacy[1]}; write it plainly, as {parsed.href}, "
            "without backslashes before the path and without percent-encoded or "
            "numeric-shorthand hosts")
    return WebUrl(href=parsed.href, scheme=scheme, host=host, port=port,
                  origin=str(parsed.origin),
                  userinfo=bool(parsed.username or parsed.password or _legacy_userinfo(url)))


def _legacy_userinfo(url: str) -> bool:
    try:
        parts = urlsplit(url.strip(_C0_OR_SPACE))
    except ValueError:
        return False
    return "@" in parts.netloc


def _legacy_reading(url: str, scheme: str) -> tuple[str, int] | None:
    """(host, port) as an RFC 3986 reader takes them, in the browser's spelling, or None."""
    try:
        parts = urlsplit(url.strip(_C0_OR_SPACE))
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        return None
    host = parts.hostname
    if not host or parts.scheme.lower() != scheme:
        return None
    try:
        return str(ipaddress.ip_address(host)), port
    except ValueError:
        pass
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    return host, port


async def url_target(url: str, settings: PiecesSettings) -> str:
    """Check a raw URL against the allow-list and the address rules; returns it as the browser
    serialises it, which is what must be navigated."""
    target = read_web_url(url)
    allowed = {origin_of(o) for o in settings.allowed_origins}
    if target.origin not in allowed:
        hint = " (a trailing dot makes another origin)" if target.host.endswith(".") else ""
        raise TargetRefused(
            f"url: origin {target.origin} is not allowed; add it to [pieces] "
            f"allowed_origins{hint}")
    if not settings.allow_private:
        await _refuse_private(target)
    target.refuse_userinfo("url")
    return target.href


async def _refuse_private(target: WebUrl) -> None:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):  # gaierror, or a name IDNA cannot encode
        raise TargetRefused(f"url: host {target.host!r} does not resolve") from None
    for info in infos:
        address = str(info[4][0])
        if is_private(address):
            raise TargetRefused(
                f"url: {target.host} resolves to a private address ({address}); "
                "set [pieces] allow_private = true to allow it"
            )
