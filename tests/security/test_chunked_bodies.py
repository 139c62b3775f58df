"""Request bodies without a Content-Length (Transfer-Encoding: chunked) against the size limit,
sent over a raw socket to a real `oven serve`: over the limit is a 413 JSON error, never a 500."""

from __future__ import annotations

import contextlib
import json
import socket
from typing import Any

import pytest

from tests.oven_process import OvenProcess

from .conftest import MAX_BODY_BYTES, PTY_TOKEN


def chunked_request(oven: OvenProcess, method: str, path: str, chunks: list[bytes], *,
                    headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """Send `chunks` as a chunked body and return the status and JSON body of the answer."""
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{oven.port}",
            "Transfer-Encoding: chunked", "Content-Type: application/json", "Connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", oven.port), timeout=30) as sock:
        # Answered before the whole body was read: the answer is still there to read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall("\r\n".join(head).encode() + b"\r\n\r\n" + body)
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
        except ConnectionResetError:
            pass
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 "), answer[:200]
    status = int(status_line.split()[1])
    headers_raw, _, payload = rest.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in headers_raw.lower():
        payload = _unchunk(payload)
    return status, json.loads(payload)


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2:]
    return out


def _filler(total: int, piece: int) -> list[bytes]:
    """`total` bytes of a JSON string's insides, in chunks of `piece` bytes."""
    return [b"a" * min(piece, total - at) for at in range(0, total, piece)]


# Every route that reads a request body, with the headers it needs. /bakes streams under its
# own limits (its JSON form is capped at 64 KiB, the same as this service's body limit).
BODY_ROUTES = [
    ("POST", "/grabs", {}),
    ("POST", "/pty/sessions", {"Authorization": f"Bearer {PTY_TOKEN}"}),
    ("POST", "/bakes", {}),
]


@pytest.mark.parametrize(("method", "path", "headers"), BODY_ROUTES,
                         ids=[f"{m} {p}" for m, p, _ in BODY_ROUTES])
@pytest.mark.parametrize("piece", [1024, 16 * 1024, MAX_BODY_BYTES + 1],
                         ids=["small chunks", "16 KiB chunks", "one chunk over"])
def test_a_chunked_body_over_the_limit_answers_413_json_never_500(
        edge_oven: OvenProcess, method: str, path: str, headers: dict[str, str],
        piece: int) -> None:
    chunks = [b'{"piece": "', *_filler(MAX_BODY_BYTES + 1, piece), b'"}']
    status, body = chunked_request(edge_oven, method, path, chunks, headers=headers)
    assert status == 413, body
    assert body["error"]["code"] == "too_large"
    if path != "/bakes":
        assert f"over {MAX_BODY_BYTES} bytes" in body["error"]["message"]


def test_a_chunked_body_under_the_limit_is_read_as_usual(edge_oven: OvenProcess) -> None:
    grab = json.dumps({"piece": "still", "format": "png", "width": 33, "height": 33}).encode()
    status, body = chunked_request(edge_oven, "POST", "/grabs", [grab[:10], grab[10:]])
    assert status in (200, 202), body
    # Still under the limit, split in many chunks: refused for what it says, not its size.
    padded = b'{"piece": "still", "pad": "' + b"a" * (MAX_BODY_BYTES - 100) + b'"}'
    chunks = [padded[at:at + 1000] for at in range(0, len(padded), 1000)]
    status, body = chunked_request(edge_oven, "POST", "/grabs", chunks)
    assert status == 422, body


def test_the_service_still_answers_after_refused_chunked_bodies(edge_oven: OvenProcess) -> None:
    for _ in range(3):
        status, _ = chunked_request(edge_oven, "POST", "/grabs",
                                    _filler(MAX_BODY_BYTES * 2, 4096))
        assert status == 413
    assert "unhandled error" not in edge_oven.log
    status, body = chunked_request(edge_oven, "POST", "/grabs", [b"{}"])
    assert status == 422, body
