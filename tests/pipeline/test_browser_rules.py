"""Browser rules in a running service: self-requests blocked, recycles by count and by health."""

from __future__ import annotations

import io
import os
import signal
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from tests.oven_process import StartOven
from tests.waiting import wait_until

from .grab_client import chromium_main, grab_bytes, metric, submit, wait_for_job

# Paints the canvas green when fetching `target` fails (blocked), red when it succeeds.
PROBE_PAGE = b"""<!doctype html><canvas id=c width=64 height=64></canvas><script>
window.ovenReady = false;
const target = new URLSearchParams(location.search).get('target');
const paint = (colour) => { const g = document.getElementById('c').getContext('2d');
  g.fillStyle = colour; g.fillRect(0, 0, 64, 64); window.ovenReady = true; };
fetch(target, {mode: 'no-cors'}).then(() => paint('#f00'), () => paint('#0f0'));
</script>"""


@pytest.fixture
def page_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = PROBE_PAGE if self.path.startswith("/probe") else b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/html" if body is PROBE_PAGE else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def new_main(oven: object, old_pid: int) -> bool:
    """True once a main chromium other than `old_pid` runs (none may exist mid-recycle)."""
    try:
        return chromium_main(oven).pid != old_pid  # type: ignore[arg-type]
    except AssertionError:
        return False


def corner_colour(png: bytes) -> tuple[int, int, int]:
    pixel = Image.open(io.BytesIO(png)).convert("RGB").getpixel((10, 10))
    assert isinstance(pixel, tuple)
    return pixel[0], pixel[1], pixel[2]


def test_a_piece_cannot_reach_the_service_it_runs_in(start_oven: StartOven,
                                                      page_server: str) -> None:
    oven = start_oven({"pieces": {"allowed_origins": [page_server], "allow_private": True}})
    # Control: a request to the page's own server goes through (the page paints red).
    _, reached = grab_bytes(oven, url=f"{page_server}/probe?target={page_server}/ok",
                            format="png", width=64, height=64)
    assert corner_colour(reached) == (255, 0, 0)
    # oven's own port is blocked inside Chromium (the page paints green).
    _, blocked = grab_bytes(oven, url=f"{page_server}/probe?target={oven.url}/health",
                            format="png", width=64, height=64)
    assert corner_colour(blocked) == (0, 255, 0)


def test_the_browser_is_recycled_after_restart_after_jobs(start_oven: StartOven) -> None:
    oven = start_oven({"browser": {"restart_after": 3, "pages": 1}})
    first = chromium_main(oven).pid
    for width in (100, 102, 104, 106):  # distinct sizes: four captures, no cache hits
        grab_bytes(oven, piece="still", format="png", width=width, height=100)
    assert metric(oven, "oven_browser_restarts_total", {"reason": "restart_after"}) == 1
    assert chromium_main(oven).pid != first


def test_a_browser_that_stops_answering_health_probes_is_replaced(
    start_oven: StartOven,
) -> None:
    oven = start_oven({"browser": {"health_interval_s": 0.5, "health_timeout_s": 0.5}})
    frozen = chromium_main(oven)
    os.kill(frozen.pid, signal.SIGSTOP)  # a real hang: the browser process stops answering
    try:
        wait_until("a health recycle",
                   lambda: metric(oven, "oven_browser_restarts_total", {"reason": "health"}) >= 1,
                   timeout=30)
        wait_until("a new chromium", lambda: new_main(oven, frozen.pid), timeout=30)
    finally:
        if frozen.is_running():
            os.kill(frozen.pid, signal.SIGCONT)
    accepted = submit(oven, piece="still", format="png", width=120, height=90)
    assert wait_for_job(oven, accepted["id"])["state"] == "complete"
    assert not frozen.is_running() or frozen.status() == "zombie"
