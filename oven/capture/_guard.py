"""The request guard of raw-URL captures: every request the page makes is checked, not just the
first URL.

A page from an allowed public origin can still point the browser inward: a redirect to
http://169.254.169.254/, an <img> or fetch() at 127.0.0.1, an iframe on a host whose DNS answer
is private. The guard reads each request's URL as Chromium does (WHATWG, ada-url), resolves its
host itself, at request time, and aborts requests to private, loopback or link-local addresses
(IPv6 forms that embed one included, see `is_private`; unless private addresses are allowed)
and requests with a scheme other than http(s), ws(s), data and blob.

Hooks (measured on Chromium 156, Playwright 1.65; the Slot installs them):
- CDP `Fetch` on the job's tab sees its frame tree's requests *and every redirect hop*,
  dedicated workers' included (Playwright's routes never see redirect hops: it continues them
  itself);
- a *context* route sees what that misses: out-of-process (cross-site) iframes, workers, and
  popups from their first request (a tab route misses popups). A popup is useless to a capture
  and its redirect hops would pass unseen, so every request of another tab is refused and the
  tab closed at once;
- WebSocket handshakes, which neither of these intercepts, are checked by the egress proxy
  below (Chromium opens them as CONNECT tunnels through it);
- shared workers are disabled in oven's Chromium (Playwright detaches from them, so nothing
  sees their requests) and service workers are blocked by the context.
At the end of a job the guard stays until nothing of the job runs: scripts stopped, the tab
on about:blank, every other target of the context gone.

Below the hooks, the context's egress proxy (see _egress.py) checks every request that leaves
against the same guard, with the addresses of the guard's own lookup (`host`): it catches what
the hooks let go (a request held paused when its session detaches, a redirect hop of a
sub-resource inside a cross-site iframe) and DNS rebinding (it connects to no other address).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Literal

from ada_url import URL, HostType

from oven import metrics
from oven.capture._pieces import PIECES_ORIGIN

log = logging.getLogger(__name__)

GuardMode = Literal["off", "public", "schemes"]
Resolver = Callable[[str], Awaitable[list[str]]]
HostVerdict = tuple[str | None, list[str]]  # (reason it may not go, or None; its addresses)

# data: and blob: never reach the network; ws(s) handshakes are checked like http(s).
_LOCAL_SCHEMES = frozenset({"data", "blob", "about"})
_NETWORK_SCHEMES = frozenset({"http", "https", "ws", "wss"})
_PIECES_HOST = URL(PIECES_ORIGIN).hostname
# A piece making thousands of blocked requests must not grow the job's record without bound.
MAX_RECORDED = 20
LOOKUP_TIMEOUT_S = 5.0


# Prefixes whose last 32 bits are an IPv4 address a gateway forwards to: judged by that address.
_EMBEDDING_LAST_32 = (
    ipaddress.IPv6Network("::ffff:0:0/96"),  # IPv4-mapped
    ipaddress.IPv6Network("::ffff:0:0:0/96"),  # IPv4-translated (SIIT)
    ipaddress.IPv6Network("64:ff9b::/96"),  # NAT64 well-known prefix (RFC 6052)
)
# Private whole, whatever they embed.
_PRIVATE_V6 = (
    ipaddress.IPv6Network("::/96"),  # IPv4-compatible (deprecated; some stacks route it as IPv4)
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # NAT64 local use (RFC 8215): the network's own
    ipaddress.IPv6Network("2001::/32"),  # Teredo: the client IPv4 is obfuscated; no site is there
)


def is_private(address: str) -> bool:
    """True for any address that is not globally routable unicast (loopback, RFC 1918,
    link-local, CGNAT, documentation, multicast, unspecified), and for IPv6 forms that lead to
    such an IPv4 address: IPv4-mapped, SIIT, NAT64 and 6to4 are judged by the IPv4 address
    inside; IPv4-compatible, local-use NAT64 and Teredo are private whole."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in net for net in _PRIVATE_V6):
            return True
        if any(ip in net for net in _EMBEDDING_LAST_32):
            return is_private(str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
        if ip.sixtofour is not None:  # 2002::/16 carries the relay's IPv4 in bits 16..47
            return is_private(str(ip.sixtofour))
    return not ip.is_global or ip.is_multicast


async def system_resolver(host: str) -> list[str]:
    """The addresses getaddrinfo gives for `host` (the same resolver Chromium asks)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class RequestGuard:
    """One job's verdicts: which requests go through, and a record of those that did not."""

    def __init__(self, mode: GuardMode, *, resolver: Resolver = system_resolver) -> None:
        if mode == "off":
            raise ValueError("a guard is only made for mode 'public' or 'schemes'")
        self.mode = mode
        self.blocked: list[str] = []  # "reason url", the first MAX_RECORDED
        self.blocked_count = 0
        self._resolver = resolver
        # Per job, so one lookup serves all of a host's requests and a job's answer is stable.
        self._hosts: dict[str, asyncio.Task[HostVerdict]] = {}

    async def verdict(self, url: str) -> str | None:
        """None when the request may go, else the reason it may not."""
        try:
            parsed = URL(url)  # as Chromium reads it, so the host checked is the host reached
        except ValueError:
            return "bad_url"
        scheme = parsed.protocol.removesuffix(":")
        if scheme in _LOCAL_SCHEMES:
            return None
        if scheme not in _NETWORK_SCHEMES:
            return "scheme"
        host = parsed.hostname
        if parsed.host_type == HostType.IPV6:
            host = host.strip("[]")
        if not host:
            return "bad_url"
        if host == _PIECES_HOST or self.mode == "schemes":
            return None  # bundled pieces are answered by a route and never reach the network
        reason, _ = await self.host(host)
        return reason

    async def host(self, host: str) -> HostVerdict:
        """The job's verdict on `host` (a name or an IP literal, IPv6 without brackets) and the
        addresses its one lookup gave: the egress proxy connects to those and no others, so a
        host cannot answer the check with a public address and the connection with a private
        one. In mode `schemes` every host may go, as the system resolves it."""
        if self.mode == "schemes":
            return None, []
        task = self._hosts.get(host)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._host_verdict(host))
            self._hosts[host] = task
        return await asyncio.shield(task)

    async def _host_verdict(self, host: str) -> HostVerdict:
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                async with asyncio.timeout(LOOKUP_TIMEOUT_S):
                    addresses = await self._resolver(host)
            except (OSError, TimeoutError):
                return "unresolvable", []
        if not addresses:
            return "unresolvable", []
        if any(is_private(a) for a in addresses):
            return "private_address", []
        return None, addresses

    def record(self, url: str, reason: str) -> None:
        self.blocked_count += 1
        metrics.CAPTURE_BLOCKED.labels(reason=reason).inc()
        if len(self.blocked) < MAX_RECORDED:
            self.blocked.append(f"{reason} {url[:300]}")
            log.info("blocked a request of a raw-URL capture (%s): %s", reason, url[:300])

    def summary(self) -> list[str]:
        """The job's record: the first blocked requests, and how many more there were."""
        more = self.blocked_count - len(self.blocked)
        return [*self.blocked, f"... and {more} more"] if more > 0 else list(self.blocked)
