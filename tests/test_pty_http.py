"""PTY sessions through a real `oven serve`: WebSocket paste, auth, profiles, exit, resize."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.oven_process import OvenProcess
from tests.waiting import wait_until

TOKEN = "pty-test-token"
PASTE = 10 * 1024 * 1024
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def oven(tmp_path: Path) -> Iterator[OvenProcess]:
    sink = tmp_path / "pasted.bin"
    consumer = ("import os,sys; n=int(sys.argv[1]); out=open(sys.argv[2],'wb'); got=0\n"
                "while got < n:\n"
                "    chunk = os.read(0, 1 << 16)\n"
                "    if not chunk: break\n"
                "    out.write(chunk); got += len(chunk)\n"
                "out.close()")
    process = OvenProcess(tmp_path, config={
        "pty": {"enabled": True, "token": TOKEN, "record_dir": "casts"},
        "pty.profiles.consumer": {"command": [sys.executable, "-c", consumer, str(PASTE),
                                              str(sink)], "raw": True},
        "pty.profiles.short": {"command": ["head", "-c", "1000"], "raw": True},
        "pty.profiles.size": {"command": ["sh", "-c", "read line; stty size"]},
        "pty.profiles.greet": {"command": ["sh", "-c", "echo hello-before-attach; cat"]},
        "pty.profiles.spew": {"command": ["sh", "-c", "read go; head -c 20971520 /dev/zero"],
                              "raw": True},
    }).start()
    yield process
    process.stop()


def start_session(oven: OvenProcess, profile: str) -> dict[str, str]:
    r = httpx.post(f"{oven.url}/pty/sessions", json={"profile": profile, "cols": 80, "rows": 24},
                   headers=AUTH, timeout=20)
    assert r.status_code == 201, r.text
    return r.json()


def ack(ws: object, rendered: int) -> None:
    """Acknowledge output; after the child's exit the server may already have closed."""
    with contextlib.suppress(ConnectionClosed):
        ws.send(json.dumps({"type": "ack", "bytes": rendered}))  # type: ignore[attr-defined]


def ws_url(oven: OvenProcess, session: dict[str, str]) -> str:
    return f"ws://127.0.0.1:{oven.port}{session['ws_url']}?token={TOKEN}"


def test_a_10_mib_paste_through_the_websocket_arrives_byte_exact(oven: OvenProcess) -> None:
    session = start_session(oven, "consumer")
    paste = os.urandom(PASTE)
    ended: dict[str, object] = {}
    with connect(ws_url(oven, session), max_size=None) as ws:

        def read() -> None:  # output (none in raw mode) and the exit notice; acks what it saw
            seen = 0
            for message in ws:
                if isinstance(message, bytes):
                    seen += len(message)
                    ack(ws, seen)
                elif json.loads(message).get("type") == "exit":
                    ended.update(json.loads(message))
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        t0 = time.perf_counter()
        for start in range(0, PASTE, 65536):
            ws.send(paste[start:start + 65536])
        reader.join(60)
        elapsed = time.perf_counter() - t0
    assert ended.get("status") == 0, ended
    pasted = (oven.workdir / "pasted.bin").read_bytes()
    assert hashlib.sha256(pasted).hexdigest() == hashlib.sha256(paste).hexdigest()
    print(f"10 MiB paste over WebSocket: {PASTE / elapsed / 1e6:.1f} MB/s")


def test_pty_routes_refuse_missing_and_wrong_tokens_and_unknown_profiles(
    oven: OvenProcess,
) -> None:
    body = {"profile": "consumer"}
    assert httpx.post(f"{oven.url}/pty/sessions", json=body).status_code == 401
    wrong = httpx.post(f"{oven.url}/pty/sessions", json=body,
                       headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    unknown = httpx.post(f"{oven.url}/pty/sessions", json={"profile": "rootshell"},
                         headers=AUTH)
    assert unknown.status_code == 422 and "not configured" in unknown.json()["error"]["message"]
    assert httpx.get(f"{oven.url}/pty/sessions").status_code == 401


def test_pty_routes_are_off_unless_enabled(tmp_path: Path) -> None:
    oven = OvenProcess(tmp_path).start()
    try:
        r = httpx.post(f"{oven.url}/pty/sessions", json={"profile": "shell"}, headers=AUTH)
        assert r.status_code == 403 and r.json()["error"]["code"] == "disabled"
    finally:
        oven.stop()


def test_a_child_exiting_mid_paste_ends_the_socket_cleanly(oven: OvenProcess) -> None:
    session = start_session(oven, "short")
    with connect(ws_url(oven, session), max_size=None) as ws:
        # 4 MiB offered; the child takes 1000 bytes and exits. The server may close while we
        # are still sending: that is the point, and what was sent does not matter.
        with contextlib.suppress(ConnectionClosed):
            for _ in range(64):
                ws.send(b"x" * 65536)
        # Whether or not the send was cut short, the exit notice comes before the close.
        notices = []
        with contextlib.suppress(ConnectionClosed):
            while True:
                message = ws.recv(timeout=20)
                if isinstance(message, str):
                    notices.append(json.loads(message))
                    if notices[-1].get("type") == "exit":
                        break
    assert notices and notices[-1]["type"] == "exit", notices
    assert notices[-1]["status"] == 0, notices
    # An ended session is either listed as ended or (once its actor has gone) not listed.
    listing = httpx.get(f"{oven.url}/pty/sessions", headers=AUTH).json()["sessions"]
    assert session["id"] not in [s["id"] for s in listing if s["state"] == "running"], listing


def test_a_resize_reaches_the_child(oven: OvenProcess) -> None:
    session = start_session(oven, "size")
    output = b""
    with connect(ws_url(oven, session), max_size=None) as ws:
        # No pause between the two: the socket's messages reach the session actor in order, so
        # the resize is applied before the newline lets the child run `stty size`.
        ws.send(json.dumps({"type": "resize", "cols": 120, "rows": 40}))
        ws.send(b"\n")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and b"40 120" not in output:
            try:
                message = ws.recv(timeout=15)
            except ConnectionClosed:
                break  # the child printed and exited; the assertion below says what came
            if isinstance(message, bytes):
                output += message
                ack(ws, len(output))
    assert b"40 120" in output, output
    # recorded as asciinema v2 under data_dir/casts (a header line, then output events)
    cast = oven.workdir / "data" / "casts" / f"{session['id']}.cast"
    # The recorder writes from its own task: the file lags the socket.
    wait_until("the resize's output in the recording",
               lambda: cast.exists() and "40 120" in cast.read_text(), timeout=10)
    header, *events = cast.read_text().splitlines()
    assert json.loads(header)["version"] == 2
    assert any("40 120" in json.loads(event)[2] for event in events)


def test_pty_metrics_count_the_bytes_and_sessions(oven: OvenProcess) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    def sample(name: str, labels: dict[str, str]) -> float:
        for family in text_string_to_metric_families(httpx.get(f"{oven.url}/metrics").text):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return float(s.value)
        return 0.0

    session = start_session(oven, "size")
    assert sample("oven_pty_sessions", {"state": "running"}) == 1
    with connect(ws_url(oven, session), max_size=None) as ws:
        ws.send(b"\n")
        ws.recv(timeout=15)
    # The session publishes its figures once a second.
    wait_until("the session's input bytes in /metrics",
               lambda: sample("oven_pty_bytes_total", {"direction": "in"}) >= 1, timeout=10,
               interval=0.2)
    assert sample("oven_pty_bytes_total", {"direction": "in"}) >= 1
    assert sample("oven_pty_bytes_total", {"direction": "out"}) >= 1


def spew_through_the_websocket(oven: OvenProcess, session: dict[str, str]) -> float:
    """Start the spew profile's 20 MiB and read it all, acking; the seconds it took."""
    received = 0
    with connect(ws_url(oven, session), max_size=None) as ws:
        started = time.monotonic()
        ws.send(b"go\n")
        deadline = started + 90
        while received < 20 * 1024 * 1024 and time.monotonic() < deadline:
            message = ws.recv(timeout=30)
            if isinstance(message, bytes):
                received += len(message)
                ack(ws, received)
        elapsed = time.monotonic() - started
    assert received >= 20 * 1024 * 1024, received
    return elapsed


def test_an_observer_that_does_not_read_never_slows_the_controlling_client(
    oven: OvenProcess,
) -> None:
    alone = spew_through_the_websocket(oven, start_session(oven, "spew"))
    session = start_session(oven, "spew")
    stream_url = f"{oven.url}{session['stream_url']}?token={TOKEN}"
    with httpx.Client(timeout=30) as observer_http, observer_http.stream("GET", stream_url) as sse:
        assert sse.status_code == 200  # attached, and from now on never read
        observed = spew_through_the_websocket(oven, session)
    # The bound is the claim. An observer that held the controller back would stall it until
    # the observer was let go (pty.send_timeout_s); 3x plus 3 s leaves room for a loaded
    # 2-core machine and still catches any slowdown the observer causes.
    assert observed < 3 * alone + 3, f"alone {alone:.2f} s, observed {observed:.2f} s"


def test_output_printed_before_the_websocket_connects_is_delivered(oven: OvenProcess) -> None:
    session = start_session(oven, "greet")

    def printed() -> int:
        listing = httpx.get(f"{oven.url}/pty/sessions", headers=AUTH).json()["sessions"]
        return sum(int(s["stats"]["bytes_out"]) for s in listing if s["id"] == session["id"])

    # The greeting is out before anyone is attached.
    wait_until("the greeting to be printed", lambda: printed() >= len("hello-before-attach"),
               timeout=15, interval=0.05)
    output = b""
    with connect(ws_url(oven, session), max_size=None) as ws:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and b"hello-before-attach" not in output:
            message = ws.recv(timeout=15)
            if isinstance(message, bytes):
                output += message
                ack(ws, len(output))
        ws.send(b"\x04")  # end cat's input
    assert b"hello-before-attach" in output


def test_an_idle_terminal_keeps_its_websocket(oven: OvenProcess) -> None:
    session = start_session(oven, "greet")
    output = b""
    with connect(ws_url(oven, session), max_size=None) as ws:
        time.sleep(3)  # idle on purpose: longer than the server's one-second output poll
        ws.send(b"still-here\n")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and output.count(b"still-here") < 2:
            message = ws.recv(timeout=15)
            if isinstance(message, bytes):
                output += message
                ack(ws, len(output))
        ws.send(b"\x04")
    assert output.count(b"still-here") >= 2  # the echo and cat's copy
