"""Small HTTP servers the security tests run on loopback: each records every request it gets."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html"
    location: str | None = None


Answer = Callable[[str, str], Reply]  # (host, path) -> reply


class RecordingServer:
    """A threaded HTTP server on 127.0.0.1 that remembers (host, path) of every request.

    As a forward proxy (Chromium's --proxy-server) it receives absolute URLs; `hits` then
    names the host each request was meant for.
    """

    def __init__(self, answer: Answer) -> None:
        self.hits: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                host = parts.hostname or self.headers.get("host", "").split(":")[0]
                path = parts.path + (f"?{parts.query}" if parts.query else "")
                with server._lock:
                    server.hits.append((host, path))
                reply = answer(host, path)
                self.send_response(reply.status)
                self.send_header("content-type", reply.content_type)
                self.send_header("content-length", str(len(reply.body)))
                self.send_header("cache-control", "no-store")
                if reply.location:
                    self.send_header("location", reply.location)
                self.end_headers()
                self.wfile.write(reply.body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def paths(self) -> list[str]:
        with self._lock:
            return [path for _, path in self.hits]

    def hosts(self) -> set[str]:
        with self._lock:
            return {host for host, _ in self.hits}

    @contextmanager
    def running(self) -> Iterator[RecordingServer]:
        self._thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=10)
