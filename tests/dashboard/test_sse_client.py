"""The suite's SSE reader hangs up at once, even on a stream that is quiet (the dashboard sends a
keepalive only every 15 s, longer than close() waits for the reading thread)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.dashboard.sse_client import SseClient


@pytest.fixture
def quiet_stream() -> Iterator[str]:
    """An HTTP server that answers with an event-stream head and then sends nothing."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        held.append(conn)
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"transfer-encoding: chunked\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        thread.join(timeout=5)
        for conn in held:
            conn.close()


def test_closing_a_reader_of_a_quiet_stream_stops_its_thread_at_once(quiet_stream: str) -> None:
    reader = SseClient(quiet_stream).start()
    assert reader.connected.wait(timeout=10)  # reading the body, where nothing comes
    started = time.monotonic()
    reader.close()
    # 10 s is close()'s own limit; an interrupted read ends in well under a second.
    assert time.monotonic() - started < 5
    assert reader.error is None, reader.error
