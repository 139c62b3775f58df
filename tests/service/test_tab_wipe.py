"""Isolation between one client's page and the next on a reused tab (README, Pages): after a
job the tab is wiped of Cache Storage, service workers and web storage of the origins it
visited, so the next job on the same page slot finds nothing of them.

One page slot, so both jobs run in the same tab. The first page stores everything it can and
checks, in the same page, that it can see what it stored (so the check is able to fail); the
second page paints green only if none of it is there. Service workers cannot be registered at
all (the context blocks them): the first page checks that its registration failed."""

from __future__ import annotations

import functools
import io
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from tests.oven_process import StartOven, free_port
from tests.pipeline.grab_client import grab_bytes

FIND = """
async function leftovers() {
  const found = [];
  try { if ((await caches.keys()).length) found.push("cache"); } catch (e) {}
  try {
    if (navigator.serviceWorker && (await navigator.serviceWorker.getRegistrations()).length)
      found.push("sw");
  } catch (e) {}
  try { if (localStorage.length) found.push("local"); } catch (e) {}
  return found;
}
function paint(colour, note) {
  const c = document.getElementById("c").getContext("2d");
  c.fillStyle = colour; c.fillRect(0, 0, 64, 64);
  document.title = note;
  window.ovenReady = true;
}
"""
STORE = FIND + """
(async () => {
  const errors = [];
  try { localStorage.setItem("left", "by the previous client"); } catch (e) { errors.push("" + e); }
  try { await (await caches.open("previous")).put("/kept", new Response("kept")); }
  catch (e) { errors.push("" + e); }
  try {
    const late = new Promise((_, no) => setTimeout(() => no(new Error("sw: no answer")), 3000));
    await Promise.race([navigator.serviceWorker.register("/sw.js")
                        .then(() => navigator.serviceWorker.ready), late]);
  } catch (e) { errors.push("" + e); }
  const found = await leftovers();
  // Service workers are blocked in oven's contexts: registering one must have failed.
  const expected = found.join(",") === "cache,local" && errors.length === 1;
  paint(expected ? "#0000ff" : "#ff0000", found.join(",") + " " + errors.join(";"));
})();
"""
CHECK = FIND + """
(async () => {
  const found = await leftovers();
  paint(found.length ? "#ff0000" : "#00ff00", found.join(","));
})();
"""


def page(script: str) -> str:
    canvas = '<canvas id="c" width="64" height="64"></canvas>'
    return f"<!doctype html>{canvas}<script>{script}</script>"


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "store.html").write_text(page(STORE))
    (site / "check.html").write_text(page(CHECK))
    (site / "sw.js").write_text("self.addEventListener('fetch', () => {});")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def colour(png: bytes) -> tuple[int, int, int]:
    with Image.open(io.BytesIO(png)) as image:
        r, g, b = image.convert("RGB").getpixel((32, 32))
    return r, g, b


def test_the_next_job_on_a_reused_tab_finds_no_cache_storage_service_worker_or_storage(
        start_oven: StartOven, origin: str) -> None:
    oven = start_oven({"browser": {"pages": 1, "jobs_per_tab": 100},
                       "queue": {"interactive_reserved": 0},
                       "pieces": {"allowed_origins": [origin], "allow_private": True}})
    view, stored = grab_bytes(oven, url=f"{origin}/store.html", format="png", width=64, height=64)
    assert colour(stored) == (0, 0, 255), (colour(stored), view["result"])  # saw its own, no worker
    _, checked = grab_bytes(oven, url=f"{origin}/check.html", format="png", width=64,
                            height=64)
    assert colour(checked) == (0, 255, 0), colour(checked)  # red: something was left
