"""Which callback URLs oven will POST results to, refusing what could reach inside (SSRF)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from oven.grabs import TargetRefused, WebUrl, is_private, origin_of, read_web_url
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
    """Check a callback URL at the edge (no DNS); returns it as a browser serialises it, or
    raises CallbackRefused.

    Read like grab targets (oven.grabs.read_web_url): a URL whose host httpx would read
    differently from the check is refused. Names are resolved and checked again before every
    attempt (`check_resolved`), so a name that starts pointing inside after admission is still
    refused.
    """
    return _checked(url, settings).href


def _checked(url: str, settings: WebhookSettings) -> WebUrl:
    if settings.secret is None:
        raise CallbackRefused("callback_url: webhooks are not configured ([webhooks] secret is "
                              "unset), so results cannot be signed")
    if len(url) > MAX_URL_LENGTH:
        raise CallbackRefused(f"callback_url: longer than {MAX_URL_LENGTH} characters")
    try:
        target = read_web_url(url, field="callback_url")
    except TargetRefused as exc:
        raise CallbackRefused(str(exc)) from None
    if not settings.allowed_origins:
        raise CallbackRefused("callback_url: callbacks are disabled; list the receiver's origin "
                              "in [webhooks] allowed_origins")
    if target.origin not in {origin_of(o) for o in settings.allowed_origins}:
        raise CallbackRefused(f"callback_url: origin {target.origin} is not allowed; add it to "
                              "[webhooks] allowed_origins")
    if not settings.allow_private and _literal_private(target.host):
        raise CallbackRefused(f"callback_url: {target.host} is a private address; set "
                              "[webhooks] allow_private = true to allow it")
    try:
        target.refuse_userinfo("callback_url")
    except TargetRefused as exc:
        raise CallbackRefused(str(exc)) from None
    return target


async def check_resolved(url: str, settings: WebhookSettings) -> None:
    """Refuse a callback whose host resolves to a private address (unless allow_private)."""
    target = _checked(url, settings)
    if settings.allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            target.host, target.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"host {target.host!r} does not resolve: {exc}") from None
    for info in infos:
        address = str(info[4][0])
        if is_private(address):
            raise CallbackRefused(f"callback_url: {target.host} resolves to a private address "
                                  f"({address}); set [webhooks] allow_private = true to allow it")
