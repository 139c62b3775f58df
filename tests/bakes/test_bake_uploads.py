"""POST /bakes bodies that are slow, endless or oddly shaped, sent by hand on a real socket.

A bake reserves one of `bakes.max_active` slots before its body is read, so whatever holds a
request open holds a slot: a trickled body, a stalled one, thousands of tiny form parts, a
multipart preamble that never ends. Each must be cut off by a deadline or a bound, answered with
a 4xx JSON error, and give its slot back.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.oven_process import OvenProcess, free_port
from tests.pipeline.grab_client import metric
from tests.waiting import wait_until

from .bake_kit import compressed, frames, png_frame, tar_block, zip_bytes
from .conftest import MAX_ACTIVE, MAX_ARCHIVE_BYTES, UPLOAD_IDLE_S, UPLOAD_TIMEOUT_S

BOUNDARY = "oven-test-boundary-7d1c"
FORM = f"multipart/form-data; boundary={BOUNDARY}"


class RawRequest:
    """A POST written by hand, so a test sends its body as slowly, or in as many pieces, as it
    likes and sees the moment the server answers."""

    def __init__(self, oven: OvenProcess, headers: dict[str, str], path: str = "/bakes") -> None:
        self.sock = socket.create_connection(("127.0.0.1", oven.port), timeout=30)
        lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1",
                 *(f"{k}: {v}" for k, v in headers.items()), "", ""]
        self.sock.sendall("\r\n".join(lines).encode())
        self.sent = 0

    def answered(self, wait: float = 0.0) -> bool:
        return bool(select.select([self.sock], [], [], wait)[0])

    def send(self, data: bytes) -> bool:
        """Send `data` unless the server has answered already; False once it has."""
        if self.answered():
            return False
        self.sock.sendall(data)
        self.sent += len(data)
        return True

    def response(self, timeout: float = 10) -> tuple[int, dict[str, Any]]:
        self.sock.settimeout(timeout)
        raw = b""
        while b"\r\n\r\n" not in raw:
            chunk = self.sock.recv(65536)
            assert chunk, f"connection closed without an answer: {raw!r}"
            raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
        while len(body) < int(headers.get("content-length", "0")):
            chunk = self.sock.recv(65536)
            assert chunk, f"connection closed mid-answer: {body!r}"
            body += chunk
        return int(lines[0].split()[1]), json.loads(body)

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def raw_requests(oven: OvenProcess, count: int, headers: dict[str, str]
                 ) -> Iterator[list[RawRequest]]:
    requests = [RawRequest(oven, headers) for _ in range(count)]
    try:
        yield requests
    finally:
        for request in requests:
            request.close()


def part_head(name: str, *, filename: str | None = None, extra: str = "") -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return (f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n{extra}\r\n").encode()


def field(name: str, value: str) -> bytes:
    return part_head(name) + value.encode() + b"\r\n"


def active_bakes(oven: OvenProcess) -> float:
    return metric(oven, "oven_bakes_active")


def assert_slots_free(oven: OvenProcess) -> None:
    wait_until("every bake slot to be free", lambda: active_bakes(oven) == 0, timeout=10)
    response = httpx.post(f"{oven.url}/bakes", files={"archive": ("t.zip", zip_bytes(frames(1)))},
                          timeout=60)
    assert response.status_code == 202, response.text


def test_uploads_that_trickle_are_cut_at_the_body_deadline_and_give_their_slots_back(
        bake_oven: OvenProcess) -> None:
    wait_until("earlier bakes to finish", lambda: active_bakes(bake_oven) == 0, timeout=120)
    headers = {"Content-Type": FORM, "Content-Length": str(MAX_ARCHIVE_BYTES)}
    with raw_requests(bake_oven, MAX_ACTIVE, headers) as tricklers:
        for request in tricklers:
            request.send(part_head("archive", filename="t.zip"))
        wait_until("the trickled uploads to hold every slot",
                   lambda: active_bakes(bake_oven) == MAX_ACTIVE, timeout=10)
        busy = httpx.post(f"{bake_oven.url}/bakes", timeout=30,
                          files={"archive": ("t.zip", zip_bytes(frames(1)))})
        assert busy.status_code == 429, busy.text
        started = time.monotonic()
        # A byte every quarter second: never idle, never done.
        while time.monotonic() - started < UPLOAD_TIMEOUT_S + 10:
            if not any([request.send(b"x") for request in tricklers]):
                break
            time.sleep(0.25)
        took = time.monotonic() - started
        answers = [request.response() for request in tricklers]
    assert took < UPLOAD_TIMEOUT_S + 3, f"trickled uploads held their slots for {took:.1f} s"
    for status, body in answers:
        assert status == 408, body
        assert body["error"]["code"] == "upload_timeout", body
        assert "bakes.upload_timeout_s" in body["error"]["message"], body
    assert_slots_free(bake_oven)


def test_an_upload_that_stalls_is_cut_after_the_idle_limit(bake_oven: OvenProcess) -> None:
    headers = {"Content-Type": FORM, "Content-Length": str(MAX_ARCHIVE_BYTES)}
    with raw_requests(bake_oven, 1, headers) as (stalled,):
        stalled.send(part_head("archive", filename="t.zip") + png_frame(0)[:100])
        started = time.monotonic()
        answered = stalled.answered(wait=UPLOAD_IDLE_S + 8)
        took = time.monotonic() - started
        assert answered, f"no answer {took:.1f} s into a stalled upload"
        status, body = stalled.response()
    assert took < UPLOAD_IDLE_S + 3, took
    assert (status, body["error"]["code"]) == (408, "upload_timeout"), body
    assert "bakes.upload_idle_s" in body["error"]["message"], body
    assert_slots_free(bake_oven)


TINY_PARTS = {
    "same_name": lambda i: field("scale", "1"),
    "no_name": lambda i: f"--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nx\r\n".encode(),
    "distinct_names": lambda i: field(f"f{i}", "1"),
    "empty_file_parts": lambda i: part_head("notes", filename=f"{i}.txt") + b"\r\n",
}


@pytest.mark.parametrize("shape", sorted(TINY_PARTS))
def test_endless_tiny_form_parts_are_refused_after_a_few(bake_oven: OvenProcess,
                                                         shape: str) -> None:
    make = TINY_PARTS[shape]
    headers = {"Content-Type": FORM, "Content-Length": str(MAX_ARCHIVE_BYTES)}
    with raw_requests(bake_oven, 1, headers) as (request,):
        parts = 0
        while parts < 2000 and request.send(make(parts)):
            parts += 1
            time.sleep(0.003)  # a steady client, not a burst that fills the socket buffers
        assert request.answered(wait=10), f"no answer after {parts} parts"
        status, body = request.response()
    assert 400 <= status < 500, body
    assert parts < 100, f"{parts} form parts were read before the answer {body}"
    assert body["error"]["code"] in ("too_many_parts", "invalid"), body
    assert_slots_free(bake_oven)


def test_a_form_part_with_endless_headers_is_refused_early(bake_oven: OvenProcess) -> None:
    headers = {"Content-Type": FORM, "Content-Length": str(MAX_ARCHIVE_BYTES)}
    with raw_requests(bake_oven, 1, headers) as (request,):
        request.send(f"--{BOUNDARY}\r\nX-Padding: ".encode())
        while request.sent < 2 * 1024 * 1024 and request.send(b"a" * 8192):
            time.sleep(0.002)
        assert request.answered(wait=10), f"no answer after {request.sent} bytes of headers"
        status, body = request.response()
    assert request.sent < 256 * 1024, f"read {request.sent} bytes of part headers"
    assert (status, body["error"]["code"]) == (400, "bad_request"), body
    assert "header" in body["error"]["message"], body
    assert_slots_free(bake_oven)


def test_a_multipart_body_is_bounded_as_a_whole_not_only_its_parts(
        bake_oven: OvenProcess) -> None:
    # After the closing boundary the parser discards an epilogue: no part limit applies there.
    headers = {"Content-Type": FORM, "Transfer-Encoding": "chunked"}
    junk = b"z" * 65536

    def chunk(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n"

    with raw_requests(bake_oven, 1, headers) as (request,):
        request.send(chunk(field("scale", "1") + f"--{BOUNDARY}--\r\n".encode()))
        while request.sent < 3 * MAX_ARCHIVE_BYTES and request.send(chunk(junk)):
            time.sleep(0.002)
        assert request.answered(wait=10), f"no answer after {request.sent} bytes"
        status, body = request.response()
    assert request.sent < 2 * MAX_ARCHIVE_BYTES, f"read {request.sent} bytes of epilogue"
    assert (status, body["error"]["code"]) == (413, "too_large"), body
    assert_slots_free(bake_oven)


@pytest.mark.parametrize("depth", [20_000, 100_000])
@pytest.mark.parametrize("where", ["top", "in_url"])
def test_deeply_nested_json_is_a_400_or_413_not_a_500(bake_oven: OvenProcess, where: str,
                                                      depth: int) -> None:
    nested = "[" * depth + "]" * depth
    body = nested if where == "top" else '{"url": ' + nested + "}"
    response = httpx.post(f"{bake_oven.url}/bakes", content=body, timeout=30,
                          headers={"Content-Type": "application/json"})
    expected = 400 if len(body) <= 65536 else 413  # the JSON body limit comes first
    assert response.status_code == expected, response.text[:300]
    assert response.json()["error"]["code"] in ("bad_request", "too_large")
    assert_slots_free(bake_oven)


# -- the check of a big archive: off the HTTP loop, and cut at its deadline ------------------

CHECK_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def roomy_oven(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvenProcess]:
    """Limits wide enough that checking one archive takes seconds, and a 1 s check deadline."""
    oven = OvenProcess(
        tmp_path_factory.mktemp("roomy-bake-oven"),
        config={"bakes": {"max_archive_bytes": 64 << 20, "max_total_bytes": 4 << 30,
                          "max_frame_bytes": 1 << 30, "max_ratio": 100_000,
                          "check_timeout_s": CHECK_TIMEOUT_S}},
        port=free_port(),
    )
    oven.start()
    try:
        yield oven
    finally:
        code = oven.stop()
    assert code == 0, f"oven serve exited {code} on SIGTERM:\n{oven.log[-3000:]}"


def padded_frames_tar(count: int, padding: int) -> bytes:
    """A tar.gz of `count` real PNG frames, each followed by `padding` zero bytes (a PNG reader
    stops at IEND): small to send, slow to unpack."""
    def stream() -> Iterator[bytes]:
        for index in range(count):
            data = png_frame(index)
            yield tar_block(f"frame-{index:05d}.png", len(data) + padding)
            yield data
            zeros = b"\0" * (1 << 20)
            for start in range(0, padding, len(zeros)):
                yield zeros[:min(len(zeros), padding - start)]
            yield b"\0" * (-(len(data) + padding) % tarfile.BLOCKSIZE)
        yield b"\0" * (2 * tarfile.BLOCKSIZE)

    return compressed(stream(), "gz")



def test_a_slow_archive_check_is_cut_at_its_deadline_while_health_answers(
        roomy_oven: OvenProcess, tmp_path: Path) -> None:
    data = padded_frames_tar(12, 80 << 20)  # ~1 GB unpacked from a few MB
    latencies: list[float] = []
    done = threading.Event()

    def poll_health() -> None:
        with httpx.Client(timeout=10) as client:
            while not done.is_set():
                started = time.monotonic()
                assert client.get(f"{roomy_oven.url}/health").status_code == 200
                latencies.append(time.monotonic() - started)
                time.sleep(0.05)

    poller = threading.Thread(target=poll_health)
    poller.start()
    try:
        started = time.monotonic()
        response = httpx.post(f"{roomy_oven.url}/bakes", content=data, timeout=120,
                              headers={"Content-Type": "application/gzip"})
        took = time.monotonic() - started
    finally:
        done.set()
        poller.join(15)
    assert response.status_code == 422, response.text[:300]
    assert response.json()["error"]["code"] == "check_timeout", response.text
    assert "bakes.check_timeout_s" in response.json()["error"]["message"]
    assert took < CHECK_TIMEOUT_S + 5, took
    assert len(latencies) > 5, latencies
    assert max(latencies) < 0.25, f"/health took up to {max(latencies) * 1000:.0f} ms"
    work = roomy_oven.workdir / "data" / "bakes"
    assert wait_until("the refused bake's work dir to be removed",
                      lambda: not work.exists() or not any(work.iterdir()), timeout=10)
