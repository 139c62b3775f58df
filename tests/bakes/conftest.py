"""One real `oven serve` for the bake tests, with small limits and one ffmpeg at a time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.oven_process import OvenProcess, free_port, running_oven

# One line per poll of the API would drown the log a failing test shows.
logging.getLogger("httpx").setLevel(logging.WARNING)

MAX_ARCHIVE_BYTES = 3 * 1024 * 1024
MAX_ACTIVE = 4
UPLOAD_TIMEOUT_S = 4.0
UPLOAD_IDLE_S = 2.0


class ArchiveServer:
    """A loopback HTTP server: GET hands out the bytes a test put at a path (for `url` bakes),
    POST bodies are recorded by path (webhook callbacks)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.posted: dict[str, list[bytes]] = {}
        files, posted = self.files, self.posted

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                posted.setdefault(self.path, []).append(self.rfile.read(length))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> ArchiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture(scope="session")
def archive_server() -> Iterator[ArchiveServer]:
    with ArchiveServer() as server:
        yield server


@pytest.fixture(scope="session")
def bake_oven(tmp_path_factory: pytest.TempPathFactory,
              archive_server: ArchiveServer) -> Iterator[OvenProcess]:
    config: dict[str, dict[str, object]] = {
        # A small body limit for everything else: /bakes must not be bound by it.
        "server": {"max_body_bytes": 65536},
        "encoder": {"concurrency": 1},
        "pieces": {"allowed_origins": [archive_server.origin], "allow_private": True},
        "webhooks": {"secret": "bake-hooks-secret-0123", "allow_private": True,
                     "allowed_origins": [archive_server.origin]},
        "bakes": {"max_archive_bytes": MAX_ARCHIVE_BYTES, "max_total_bytes": 4 * 1024 * 1024,
                  "max_frames": 60, "max_frame_pixels": 320 * 240, "max_ratio": 50,
                  "ratio_floor_bytes": 64 * 1024, "max_active": MAX_ACTIVE,
                  "upload_timeout_s": UPLOAD_TIMEOUT_S, "upload_idle_s": UPLOAD_IDLE_S},
    }
    with running_oven(tmp_path_factory.mktemp("bake-oven"), config, port=free_port()) as oven:
        yield oven


def bake_section(oven: OvenProcess) -> dict[str, int]:
    """The Baker's counts in /status: receiving, queued, running, max_active."""
    status = httpx.get(f"{oven.url}/status", timeout=10)
    assert status.status_code == 200, status.text
    section: dict[str, int] = status.json()["sections"]["bakes"]
    return section
