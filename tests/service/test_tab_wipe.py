"""Isolation between one client's page and the next on a reused tab (README, Pages): after a
job the tab is wiped of Cache Storage, service workers and web storage of the origins it
visited, so the next job on the same page slot finds nothing of them.

One page slot, so both jobs run in the same tab. The first page stores everything it can and
checks, in the same page, that it can see what it stored (so the check is able to fail); the
second page paints green only if none of it is there. Service workers cannot be registered at
all (the context blocks them): the first page checks that its registration failed.

Permissions: oven grants none, and a page cannot grant itself one (headless Chromium denies
what it asks for, or leaves it as it was), but a denial is a state the page changed: the next
client's page must find each permission as a fresh context has it, in the headless shell and in
the full browser a config may name. The tab itself is replaced
every `browser.jobs_per_tab` jobs, seen from inside the page as its history starting over."""

from __future__ import annotations

import functools
import io
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from oven.capture import BrowserSettings
from tests.oven_process import OvenProcess, StartOven, free_port
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
# Permissions a page can ask for; headless Chromium denies each at once, and a fresh context
# answers "prompt" for all of them (push needs userVisibleOnly to be queried at all).
PERMISSIONS = """
const ASKED = ["notifications", "push", "geolocation", "midi"];
async function states() {
  const out = [];
  for (const name of ASKED) {
    const query = name === "push" ? {name, userVisibleOnly: true} : {name};
    out.push(name + "=" + (await navigator.permissions.query(query)).state);
  }
  return out;
}
function within(promise) {
  return Promise.race([promise, new Promise(ok => setTimeout(() => ok("no answer"), 3000))]);
}
"""
ASK = PERMISSIONS + FIND.split("async function leftovers")[0] + """
function paint(colour, note) {
  const c = document.getElementById("c").getContext("2d");
  c.fillStyle = colour; c.fillRect(0, 0, 64, 64);
  document.title = note;
  window.ovenReady = true;
}
(async () => {
  const fresh = await states();
  try { await within(Notification.requestPermission()); } catch (e) {}
  try { await within(new Promise(done => navigator.geolocation.getCurrentPosition(done, done))); }
  catch (e) {}
  try { await within(navigator.requestMIDIAccess()); } catch (e) {}
  const after = await states();
  // What was asked must have changed a state here, or the next page's check could not tell a
  // wiped tab from one that was never touched. Measured in oven's tab: geolocation and MIDI
  // turn "denied"; the notification prompt leaves notifications and push as they were.
  const fromPrompt = fresh.every(s => s.endsWith("=prompt"));
  const changed = after.filter((s, i) => s !== fresh[i]).length > 0;
  paint(!fromPrompt ? "#ff0000" : changed ? "#0000ff" : "#ffff00",
        fresh.join(",") + " -> " + after.join(","));
})();
"""
CHECK_PERMISSIONS = PERMISSIONS + """
(async () => {
  const found = await states();
  const fresh = found.every(s => s.endsWith("=prompt"));
  const c = document.getElementById("c").getContext("2d");
  c.fillStyle = fresh ? "#00ff00" : "#ff0000"; c.fillRect(0, 0, 64, 64);
  window.ovenReady = true;
})();
"""
# The tab's session history: a reused tab keeps it (each job adds its page and the about:blank
# the wipe leaves for), a new tab starts with none. Painted as the red channel.
HISTORY = """
const c = document.getElementById("c").getContext("2d");
c.fillStyle = `rgb(${Math.min(history.length, 25) * 10}, 0, 0)`; c.fillRect(0, 0, 64, 64);
window.ovenReady = true;
"""
CHECK = FIND + """
(async () => {
  const found = await leftovers();
  paint(found.length ? "#ff0000" : "#00ff00", found.join(","));
})();
"""


def page(script: str) -> str:
    canvas = '<canvas id="c" width="64" height="64"></canvas>'
    # Each page declares the ready contract: it is captured once it has painted its verdict.
    return f"<!doctype html>{canvas}<script>window.ovenReady = false;{script}</script>"


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "store.html").write_text(page(STORE))
    (site / "check.html").write_text(page(CHECK))
    (site / "ask.html").write_text(page(ASK))
    (site / "check_permissions.html").write_text(page(CHECK_PERMISSIONS))
    (site / "history.html").write_text(page(HISTORY))
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


def one_page_oven(start_oven: StartOven, origin: str, *, jobs_per_tab: int) -> OvenProcess:
    return start_oven({"browser": {"pages": 1, "jobs_per_tab": jobs_per_tab},
                       "queue": {"interactive_reserved": 0},
                       "pieces": {"allowed_origins": [origin], "allow_private": True}})


def test_the_next_job_on_a_reused_tab_finds_no_cache_storage_service_worker_or_storage(
        start_oven: StartOven, origin: str) -> None:
    oven = one_page_oven(start_oven, origin, jobs_per_tab=100)
    view, stored = grab_bytes(oven, url=f"{origin}/store.html", format="png", width=64, height=64)
    assert colour(stored) == (0, 0, 255), (colour(stored), view["result"])  # saw its own, no worker
    _, checked = grab_bytes(oven, url=f"{origin}/check.html", format="png", width=64,
                            height=64)
    assert colour(checked) == (0, 255, 0), colour(checked)  # red: something was left


# The full browser keeps its refusals (blue: the ask changed a state the wipe must undo); the
# headless shell, oven's default, keeps none (yellow: every state still "prompt" after the asks,
# measured with Chromium 156 over five rounds of asks). Both must hand the next job fresh states.
BROWSERS = {"chromium": ("/usr/bin/chromium", (0, 0, 255)),
            "headless-shell": (BrowserSettings().executable_path, (255, 255, 0))}


@pytest.mark.parametrize("browser", sorted(BROWSERS))
def test_the_next_job_on_a_reused_tab_finds_every_permission_as_a_fresh_context_has_it(
        start_oven: StartOven, origin: str, browser: str) -> None:
    executable, after_ask = BROWSERS[browser]
    oven = start_oven({"browser": {"pages": 1, "jobs_per_tab": 100,
                                   "executable_path": executable},
                       "queue": {"interactive_reserved": 0},
                       "pieces": {"allowed_origins": [origin], "allow_private": True}})
    view, asked = grab_bytes(oven, url=f"{origin}/ask.html", format="png", width=64, height=64)
    assert colour(asked) == after_ask, (colour(asked), view["result"])  # red: not from prompt
    _, checked = grab_bytes(oven, url=f"{origin}/check_permissions.html", format="png",
                            width=64, height=64)
    assert colour(checked) == (0, 255, 0), colour(checked)  # red: a permission kept its state


def test_the_tab_is_replaced_every_jobs_per_tab_jobs(start_oven: StartOven, origin: str) -> None:
    oven = one_page_oven(start_oven, origin, jobs_per_tab=3)
    lengths = []
    for job in range(7):  # a query of its own per job: an identical grab is a cache hit
        _, png = grab_bytes(oven, url=f"{origin}/history.html?job={job}", format="png",
                            width=64, height=64)
        lengths.append(colour(png)[0] // 10)
    first_tab = lengths[:3]
    # Within a tab each job sees a longer history than the last; a new tab starts over.
    assert first_tab == sorted(set(first_tab)), lengths
    assert lengths[3:6] == first_tab and lengths[6] == first_tab[0], lengths
