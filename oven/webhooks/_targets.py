"""Which callback URLs oven will POST results to, refusing what could reach inside (SSRF)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from oven.grabs import TargetRefused, is_private, origin_of
from oven.webhooks._settings import WebhookSettings

MAX_URL_LENGTH = 2048


class CallbackRefused(TargetRefused):
    """A callback_url oven will not call; the message names the setting that would allow it.

    A TargetRefused, so edges that already map those keep working, but the request itself is
    what is wrong here: answer 422 (`status`) with code `callback_refused`.
    """

    status = 422
    code = "callback_refused"


def _literal_private(host: str) -> bool:
    host = host.rstrip(".")  # "localhost." is localhost too
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return is_private(str(ipaddress.ip_address(host)))
    except ValueError:
        return False  # a name: checked once resolved, before each attempt


def check_callback_url(url: str, settings: WebhookSettings) -> str:
    """Check a callback URL at the edge (no DNS); returns it unchanged or raises CallbackRefused.

    Names are resolved and checked again before every attempt (`check_resolved`), so a name that
    starts pointing inside after admission is still refused.
    """
    if settings.secret is None:
        raise CallbackRefused("callback_url: webhooks are not configured ([webhooks] secret is "
                              "unset), so results cannot be signed")
    if len(url) > MAX_URL_LENGTH:
        raise CallbackRefused(f"callback_url: longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError:
        raise CallbackRefused("callback_url: not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise CallbackRefused(f"callback_url: scheme {parts.scheme or '(none)'!r} is not "
                              "allowed; only http and https")
    if not parts.hostname:
        raise CallbackRefused("callback_url: has no host")
    if not settings.allowed_origins:
        raise CallbackRefused("callback_url: callbacks are disabled; list the receiver's origin "
                              "in [webhooks] allowed_origins")
    origin = origin_of(url)
    if origin not in {origin_of(o) for o in settings.allowed_origins}:
        raise CallbackRefused(f"callback_url: origin {origin} is not allowed; add it to "
                              "[webhooks] allowed_origins")
    if not settings.allow_private and _literal_private(parts.hostname):
        raise CallbackRefused(f"callback_url: {parts.hostname} is a private address; set "
                              "[webhooks] allow_private = true to allow it")
    return url


async def check_resolved(url: str, settings: WebhookSettings) -> None:
    """Refuse a callback whose host resolves to a private address (unless allow_private)."""
    check_callback_url(url, settings)
    if settings.allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or 443, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"host {host!r} does not resolve: {exc}") from None
    for info in infos:
        address = str(info[4][0])
        if is_private(address):
            raise CallbackRefused(f"callback_url: {host} resolves to a private address "
                                  f"({address}); set [webhooks] allow_private = true to allow it")
