"""A slot's egress proxy, driven over real sockets: what a guard refuses never leaves, what it
allows reaches the address its own lookup gave and no other, and a closed proxy lets nothing
through. (Through real Chromium: tests/security/test_guard_escapes.py and test_page_guard.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio

from oven.capture import RequestGuard
from oven.capture._egress import EgressProxy
from tests.security.servers import RecordingServer, Reply


@pytest.fixture
def origin() -> Iterator[RecordingServer]:
    with RecordingServer(lambda host, path: Reply(body=f"origin {path}".encode())).running() as s:
        yield s


class Holder:
    guard: RequestGuard | None = None


@pytest_asyncio.fixture
async def proxy() -> AsyncIterator[tuple[EgressProxy, Holder]]:
    holder = Holder()
    egress = EgressProxy(lambda: holder.guard)
    await egress.start()
    yield egress, holder
    await egress.close()


async def _get(egress: EgressProxy, url: str) -> httpx.Response:
    async with httpx.AsyncClient(proxy=egress.server, timeout=20) as client:
        return await client.get(url)


async def _raw(egress: EgressProxy, request_line: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", egress.port)
    writer.write(request_line + b"\r\nHost: x\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 20)
    writer.close()
    return answer


async def _connect(egress: EgressProxy, authority: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", egress.port)
    writer.write(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
    await writer.drain()
    answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    writer.close()
    return answer


async def test_unguarded_requests_reach_their_origin_one_per_connection(
        proxy: tuple[EgressProxy, Holder], origin: RecordingServer) -> None:
    egress, _ = proxy
    async with httpx.AsyncClient(proxy=egress.server, timeout=20) as client:
        for n in range(3):
            answer = await client.get(f"http://127.0.0.1:{origin.port}/page-{n}?q=1")
            assert answer.status_code == 200
            assert answer.text == f"origin /page-{n}?q=1"
    assert origin.paths() == ["/page-0?q=1", "/page-1?q=1", "/page-2?q=1"]


async def test_a_guarded_request_for_a_private_address_is_refused_and_recorded(
        proxy: tuple[EgressProxy, Holder], origin: RecordingServer) -> None:
    egress, holder = proxy
    holder.guard = RequestGuard("public")
    for url in (f"http://127.0.0.1:{origin.port}/secret", f"http://localhost:{origin.port}/named"):
        answer = await _get(egress, url)
        assert answer.status_code == 403, (url, answer.text)
        assert "private_address" in answer.text
    # As Chromium writes an IPv6 literal (httpx leaves out the brackets).
    v6 = await _raw(egress, f"GET http://[::1]:{origin.port}/v6 HTTP/1.1".encode())
    assert v6.startswith(b"HTTP/1.1 403") and b"private_address" in v6, v6
    # CONNECT (https:// and WebSockets) is judged the same way, before any tunnel opens.
    assert (await _connect(egress, f"127.0.0.1:{origin.port}")).startswith(b"HTTP/1.1 403")
    assert origin.paths() == []
    assert [b.split()[0] for b in holder.guard.blocked] == ["private_address"] * 4


async def test_the_guard_is_read_at_each_request(
        proxy: tuple[EgressProxy, Holder], origin: RecordingServer) -> None:
    egress, holder = proxy
    url = f"http://127.0.0.1:{origin.port}/x"
    holder.guard = RequestGuard("public")
    assert (await _get(egress, url)).status_code == 403
    holder.guard = RequestGuard("schemes")  # checks schemes only: every host may go
    assert (await _get(egress, url)).status_code == 200
    holder.guard = None
    assert (await _get(egress, url)).status_code == 200
    assert origin.paths() == ["/x", "/x"]


async def test_an_allowed_host_is_reached_only_at_the_address_the_guard_resolved(
        origin: RecordingServer) -> None:
    # The guard's resolver says `localhost` is a public address. The system resolver would
    # say 127.0.0.1, where the origin listens: reaching it would mean the proxy looked the
    # host up again (a rebinding host answers the second lookup with a private address).
    async def public(host: str) -> list[str]:
        return ["93.184.216.34"]

    guard = RequestGuard("public", resolver=public)
    egress = EgressProxy(lambda: guard, connect_timeout_s=1.0)
    await egress.start()
    try:
        answer = await _get(egress, f"http://localhost:{origin.port}/rebound")
    finally:
        await egress.close()
    assert answer.status_code == 502, answer.text
    assert "93.184.216.34" in answer.text
    assert origin.paths() == []


async def test_an_upstream_proxy_gets_what_passes_except_loopback(
        origin: RecordingServer) -> None:
    with RecordingServer(lambda host, path: Reply(body=f"upstream {host}".encode())
                         ).running() as upstream:
        egress = EgressProxy(lambda: None, upstream=f"127.0.0.1:{upstream.port}")
        await egress.start()
        try:
            far = await _get(egress, "http://93.184.216.34/far")
            near = await _get(egress, f"http://127.0.0.1:{origin.port}/near")
        finally:
            await egress.close()
    assert far.text == "upstream 93.184.216.34"
    assert upstream.hits == [("93.184.216.34", "/far")]
    assert near.text == "origin /near" and origin.paths() == ["/near"]


@pytest.mark.parametrize("request_line", [b"GET /relative HTTP/1.1", b"GARBAGE",
                                          b"GET ftp://example.com/ HTTP/1.1"])
async def test_a_request_that_is_not_a_proxy_request_gets_400(
        proxy: tuple[EgressProxy, Holder], request_line: bytes) -> None:
    egress, _ = proxy
    answer = await _raw(egress, request_line)
    assert answer.startswith(b"HTTP/1.1 400"), answer


async def test_a_closed_proxy_lets_nothing_through(
        proxy: tuple[EgressProxy, Holder], origin: RecordingServer) -> None:
    egress, _ = proxy
    await egress.close()
    with pytest.raises((httpx.ConnectError, httpx.ProxyError)):
        await _get(egress, f"http://127.0.0.1:{origin.port}/late")
    assert origin.paths() == []


async def test_an_origin_that_keeps_the_connection_open_gets_no_request_meant_for_another(
        proxy: tuple[EgressProxy, Holder], origin: RecordingServer) -> None:
    # The sticky origin ignores `Connection: close` and says keep-alive: had the client been
    # told so, it would send its next request, for another host, down the same connection.
    seen: list[bytes] = []

    async def sticky(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            seen.append(head.split(b"\r\n")[0])
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n"
                         b"Connection: keep-alive\r\n\r\nsticky")
            await writer.drain()

    server = await asyncio.start_server(sticky, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    egress, _ = proxy
    try:
        async with httpx.AsyncClient(proxy=egress.server, timeout=20) as client:
            first = await client.get(f"http://127.0.0.1:{port}/first")
            second = await client.get(f"http://127.0.0.1:{origin.port}/second")
    finally:
        server.close()
    assert first.text == "sticky" and first.headers["connection"] == "close"
    assert second.text == "origin /second"
    assert seen == [b"GET /first HTTP/1.1"]


async def test_a_request_head_over_64_kib_is_cut_off_and_never_forwarded(
        proxy: tuple[EgressProxy, Holder], origin: RecordingServer) -> None:
    egress, _ = proxy
    reader, writer = await asyncio.open_connection("127.0.0.1", egress.port)
    writer.write(f"GET http://127.0.0.1:{origin.port}/big HTTP/1.1\r\n".encode()
                 + b"X-Filler: " + b"a" * (70 * 1024) + b"\r\n\r\n")
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 20)  # the proxy closes: end of stream
    writer.close()
    assert answer == b""
    assert origin.paths() == []
