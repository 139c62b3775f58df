"""A slot's egress proxy: every request of the slot's browser context leaves through it, and
while a job's request guard is set, the proxy refuses what the guard refuses.

The guard's DevTools hooks (see _guard.py) answer requests Chromium holds paused for them. A
paused request whose session detaches is let go unchecked: Chromium does that when a tab or a
context closes, and Playwright, once a close was called, stops answering the requests it holds
(measured: the workers of a raw-URL job that failed reached a private address in ~1 of 10 such
jobs, while their context closed). The proxy sits below all of that, in the network path: no
session, no race with a teardown. It also connects only to the addresses the guard's own lookup
of the host gave, so a host cannot pass the check with a public address and then be reached at
a private one (DNS rebinding), and it sees every redirect hop as a request of its own.

Chromium sends a context's requests through its proxy loopback included (Playwright adds
`<-loopback>` to a context's bypass list). WebSockets and https:// go through CONNECT; plain
http:// comes in absolute form, one request per connection (both the origin and the client are
told the connection closes after the answer, so every request is checked on its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from oven.capture._guard import RequestGuard

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
HEAD_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0
CHUNK = 64 * 1024
LINGER_S = 30.0  # how long an answer may go on after the client has finished sending
ANSWER_TIMEOUT_S = 300.0  # an origin's answer must start within this (Chromium gives up sooner)
# Hop-by-hop headers, dropped both ways: each side gets `Connection: close` instead.
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection",
                         b"proxy-authorization", b"te", b"trailer", b"upgrade"})


class Refused(Exception):
    """A request the proxy answers itself: the status line and why."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class EgressProxy:
    """A forward HTTP proxy on 127.0.0.1 for one slot's context.

    `guard()` gives the slot's guard at the moment a request arrives (None: the job is not
    guarded, and everything goes). `upstream` ("host:port"), when set, is a proxy every
    request that passes is handed to, as it came, instead of being connected to its origin.
    """

    def __init__(self, guard: Callable[[], RequestGuard | None], *,
                 upstream: str | None = None,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        self._guard = guard
        self._connect_timeout_s = connect_timeout_s
        self._upstream = _host_port(upstream, 0) if upstream else None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def server(self) -> str:
        """The proxy's address as a context's proxy setting wants it."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0,
                                                  limit=MAX_HEAD_BYTES)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(HEAD_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            method, target, lines = _parse(head)
            if method == b"CONNECT":
                host, port = _host_port(target.decode("latin-1"), 443)
                # A tunnel for https:// or a WebSocket (ws:// too): the path is inside it.
                url = f"CONNECT {_bracket(host)}:{port} (https or WebSocket)"
            else:
                parts = urlsplit(target.decode("latin-1"))
                if parts.scheme != "http" or not parts.hostname:
                    raise Refused("400 Bad Request", f"not an absolute http URL: {target[:200]!r}")
                host, port, url = parts.hostname, parts.port or 80, parts.geturl()
            address = await self._check(host, url)
            # Like Chromium's own proxy setting, the upstream proxy is not asked for loopback.
            via = None if _loopback(host) else self._upstream
            up_reader, upstream = await _connect(via or (address, port), self._connect_timeout_s)
            if method == b"CONNECT":
                if via is not None:
                    upstream.write(head)  # the upstream proxy answers the CONNECT itself
                else:
                    writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                await _splice(reader, writer, up_reader, upstream)
            else:
                upstream.write(_request_head(method, target, lines, absolute=via is not None))
                await _answer(reader, writer, up_reader, upstream)
        except Refused as refused:
            log.debug("egress proxy refused: %s", refused)
            body = f"oven egress proxy: {refused}\n".encode()
            writer.write(b"HTTP/1.1 %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
                         b"connection: close\r\n\r\n%s"
                         % (refused.status.encode(), len(body), body))
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ConnectionError, ValueError) as exc:
            log.debug("egress proxy connection ended: %r", exc)
        finally:
            self._writers.discard(writer)
            for end in (upstream, writer):
                if end is not None:
                    end.close()

    async def _check(self, host: str, url: str) -> str:
        """The address to connect to: the first the guard's lookup gave, or the host itself
        when no guard (or one that checks schemes only) is set."""
        guard = self._guard()
        if guard is None:
            return host
        reason, addresses = await guard.host(host)
        if reason is not None:
            guard.record(url, reason)
            raise Refused("403 Forbidden", f"{reason}: {url[:300]}")
        return addresses[0] if addresses else host


async def _connect(where: tuple[str, int], timeout_s: float
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        async with asyncio.timeout(timeout_s):
            return await asyncio.open_connection(*where, limit=CHUNK)
    except (OSError, TimeoutError) as exc:
        raise Refused("502 Bad Gateway",
                      f"cannot connect to {where[0]}:{where[1]}: {exc}") from exc


def _request_head(method: bytes, target: bytes, lines: list[bytes], *, absolute: bool) -> bytes:
    """The request as the origin (or, `absolute`, the next proxy) gets it: hop-by-hop
    headers dropped, and asked to close after its answer."""
    if absolute:
        first = b"%s %s HTTP/1.1" % (method, target)
    else:
        split = urlsplit(target.decode("latin-1"))
        path = (split.path or "/") + (f"?{split.query}" if split.query else "")
        first = b"%s %s HTTP/1.1" % (method, path.encode("latin-1"))
    return b"\r\n".join([first, *_end_to_end(lines), b"Connection: close", b"", b""])


def _end_to_end(header_lines: list[bytes]) -> list[bytes]:
    """The header lines that are not hop-by-hop (each hop sets its own)."""
    return [line for line in header_lines
            if line.split(b":", 1)[0].strip().lower() not in _HOP_BY_HOP]


def _loopback(host: str) -> bool:
    host = host.rstrip(".")  # "localhost." is localhost too
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse(head: bytes) -> tuple[bytes, bytes, list[bytes]]:
    lines = head[:-4].split(b"\r\n")
    request = lines[0].split(b" ")
    if len(request) != 3 or not request[2].startswith(b"HTTP/1."):
        raise Refused("400 Bad Request", f"not an HTTP/1.x request line: {lines[0][:200]!r}")
    return request[0], request[1], lines[1:]


def _host_port(authority: str, default: int) -> tuple[str, int]:
    parts = urlsplit(f"//{authority}")
    if not parts.hostname:
        raise Refused("400 Bad Request", f"no host in {authority[:200]!r}")
    return parts.hostname, parts.port or default


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def _answer(client_reader: asyncio.StreamReader, client: asyncio.StreamWriter,
                  origin_reader: asyncio.StreamReader, origin: asyncio.StreamWriter) -> None:
    """An http:// request's body on to the origin, and its answer back, told to close: the
    client never sends a next request on this connection (an origin that ignored our
    `Connection: close` would otherwise get a request meant for another host)."""
    body = asyncio.ensure_future(_pipe(client_reader, origin))
    try:
        async with asyncio.timeout(ANSWER_TIMEOUT_S):
            head = await origin_reader.readuntil(b"\r\n\r\n")
        status, *lines = head[:-4].split(b"\r\n")
        client.write(b"\r\n".join([status, *_end_to_end(lines), b"Connection: close", b"", b""]))
        await _pipe(origin_reader, client)
    finally:
        body.cancel()
        await asyncio.gather(body, return_exceptions=True)


async def _splice(client_reader: asyncio.StreamReader, client: asyncio.StreamWriter,
                  origin_reader: asyncio.StreamReader, origin: asyncio.StreamWriter) -> None:
    """A tunnel, both ways: until the origin's side ends, or the client's and then, within
    LINGER_S, the origin's."""
    up = asyncio.ensure_future(_pipe(client_reader, origin))
    down = asyncio.ensure_future(_pipe(origin_reader, client))
    try:
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        if not down.done():
            await asyncio.wait({down}, timeout=LINGER_S)
    finally:
        for task in (up, down):
            task.cancel()
        await asyncio.gather(up, down, return_exceptions=True)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then pass the end on (a half-close, where the socket can)."""
    try:
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()
