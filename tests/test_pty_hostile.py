"""PTY routes against hostile or careless clients, through a real `oven serve`.

Deeply nested JSON, control messages of the wrong shape, an SSE observer that stops reading,
and the metric series a session leaves behind when it ends.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.oven_process import OvenProcess
from tests.test_pty_http import AUTH, TOKEN, ack, start_session, ws_url
from tests.waiting import wait_until

SEND_TIMEOUT_S = 2.0
LET_GO = f"pty observer read nothing for {SEND_TIMEOUT_S:.0f} s, let go"


@pytest.fixture
def oven(tmp_path: Path) -> Iterator[OvenProcess]:
    process = OvenProcess(tmp_path, config={
        "pty": {"enabled": True, "token": TOKEN, "send_timeout_s": SEND_TIMEOUT_S},
        "pty.profiles.cat": {"command": ["cat"], "raw": True},
        "pty.profiles.spew": {"command": ["sh", "-c", "read go; head -c 20971520 /dev/zero"],
                              "raw": True},
    }).start()
    yield process
    assert process.stop() == 0


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("body", [nested(100_000), '{"profile": ' + nested(100_000) + "}",
                                  nested(5_000)])
def test_deeply_nested_json_creating_a_session_is_a_400(oven: OvenProcess, body: str) -> None:
    response = httpx.post(f"{oven.url}/pty/sessions", content=body, timeout=30,
                          headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 400, response.text[:300]
    assert response.json()["error"]["code"] == "bad_request"


@pytest.mark.parametrize("control", [
    nested(100_000),
    '{"type": "ack", "bytes": ' + nested(5_000) + "}",
    "not json",
    "[1, 2]",
    '{"type": "ack"}',
    '{"type": "ack", "bytes": "many"}',
    '{"type": "resize", "cols": 100000000, "rows": 24}',
    '{"type": "warp", "speed": 9}',
])
def test_a_control_message_of_the_wrong_shape_closes_the_socket_with_1007(
        oven: OvenProcess, control: str) -> None:
    session = start_session(oven, "cat")
    with connect(ws_url(oven, session), max_size=None) as ws:
        ws.send(control)
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(100):
                ws.recv(timeout=10)
    assert closed.value.rcvd is not None, closed.value
    assert closed.value.rcvd.code == 1007, closed.value.rcvd
    assert "control message" in closed.value.rcvd.reason
    # The session itself lives on: a new controller can attach and is echoed.
    with connect(ws_url(oven, session), max_size=None) as ws:
        ws.send(b"still-here")
        seen = b""
        while b"still-here" not in seen:
            message = ws.recv(timeout=10)
            if isinstance(message, bytes):
                seen += message
                ack(ws, len(seen))


def test_an_sse_observer_that_reads_nothing_is_let_go_after_the_send_timeout(
        oven: OvenProcess) -> None:
    session = start_session(oven, "spew")
    observer = socket.socket()
    # A small receive window, so the server's sends stall as soon as the client stops reading.
    observer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    observer.connect(("127.0.0.1", oven.port))
    observer.sendall(f"GET {session['stream_url']}?token={TOKEN} HTTP/1.1\r\n"
                     f"Host: oven\r\nAccept: text/event-stream\r\n\r\n".encode())
    received = 0
    stop = threading.Event()

    def clients() -> int:
        listing = httpx.get(f"{oven.url}/pty/sessions", headers=AUTH, timeout=10).json()
        return sum(int(s["stats"]["clients"]) for s in listing["sessions"]
                   if s["id"] == session["id"])

    try:
        with connect(ws_url(oven, session), max_size=None) as ws:
            # Both attached before any output: the observer is there to be let go.
            wait_until("the observer and the controller to be attached",
                       lambda: clients() == 2, timeout=15)

            def control() -> None:  # the controlling client reads everything, promptly
                nonlocal received
                ws.send(b"go\n")
                while not stop.is_set():
                    try:
                        message = ws.recv(timeout=1)
                    except TimeoutError:
                        continue
                    except ConnectionClosed:
                        return
                    if isinstance(message, bytes):
                        received += len(message)
                        ack(ws, received)

            controller = threading.Thread(target=control)
            controller.start()
            try:
                wait_until("the child's output to reach the controller",
                           lambda: received >= 20 * 1024 * 1024, timeout=60)
                # The observer read nothing all along: past its send timeout the server lets
                # its stream go and says so in its log (the session detaching the observer
                # from its ring comes earlier, while the stream still holds output).
                wait_until("the server to let the stalled observer go",
                           lambda: LET_GO in oven.log, timeout=SEND_TIMEOUT_S + 30,
                           interval=0.2)
                observer.settimeout(10)
                stream = b""
                while chunk := observer.recv(1 << 20):
                    stream += chunk
            except TimeoutError:
                pytest.fail(f"the server still holds the stalled observer's stream open "
                            f"({len(stream)} bytes read once it read again)")
            finally:
                stop.set()
                controller.join(10)
    finally:
        observer.close()
    assert b"event: exit" not in stream, "the stalled observer was kept and caught up"
    assert len(stream) < 4 * 1024 * 1024, len(stream)


def test_an_ended_session_leaves_no_mailbox_metric_series_behind(oven: OvenProcess) -> None:
    def series(actor: str) -> list[str]:
        text = httpx.get(f"{oven.url}/metrics", timeout=10).text
        return [sample.name for family in text_string_to_metric_families(text)
                for sample in family.samples if sample.labels.get("actor") == actor]

    session = start_session(oven, "cat")
    names = series(session["id"])
    assert "oven_mailbox_depth" in names and "oven_mailbox_capacity" in names, names
    closed = httpx.delete(f"{oven.url}/pty/sessions/{session['id']}", headers=AUTH, timeout=30)
    assert closed.status_code == 200, closed.text
    wait_until("the ended session's series to be removed", lambda: not series(session["id"]),
               timeout=10)


def test_oven_serve_stops_at_once_with_an_sse_observer_still_reading(tmp_path: Path) -> None:
    """uvicorn waits for open responses up to server.shutdown_grace_s; an observer's stream is
    told to end when SIGTERM arrives, as a complete response, so the stop does not wait out
    the grace."""
    grace_s = 30.0
    process = OvenProcess(tmp_path, config={
        "server": {"shutdown_grace_s": grace_s},
        "pty": {"enabled": True, "token": TOKEN},
        "pty.profiles.cat": {"command": ["cat"], "raw": True},
    }).start()
    observer = socket.create_connection(("127.0.0.1", process.port), timeout=60)
    stream = b""

    def read() -> None:
        nonlocal stream
        with contextlib.suppress(OSError):
            while chunk := observer.recv(1 << 16):
                stream += chunk

    try:
        session = start_session(process, "cat")
        observer.sendall(f"GET {session['stream_url']}?token={TOKEN} HTTP/1.1\r\n"
                         f"Host: oven\r\nAccept: text/event-stream\r\n\r\n".encode())
        reader = threading.Thread(target=read)
        reader.start()
        wait_until("the observer's response to start", lambda: b"200 OK" in stream, timeout=20)
        started = time.monotonic()
        assert process.stop() == 0  # also asserts that no process it started is left
        took = time.monotonic() - started
        reader.join(10)
    finally:
        observer.close()
        if process.proc is not None and process.proc.poll() is None:
            process.stop()
    assert took < grace_s / 2, f"the stop waited {took:.1f} s on the observer (grace {grace_s} s)"
    assert stream.endswith(b"0\r\n\r\n"), f"not a complete response: {stream[-200:]!r}"
    assert "Traceback" not in process.log, process.log[-3000:]
    print(f"oven serve stopped in {took:.1f} s with an SSE observer open (grace {grace_s} s)")
