"""Real Chromium for the capture tests: one shared Browser per session, a loopback HTTP server."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import pytest_asyncio

from oven.capture import Browser, BrowserSettings, marked_pids, new_marker
from oven.capture._settings import DEFAULT_BLOCKED

BLOCKED_PATTERN = "*/tracker.gif*"

PAGES = {
    # Loads a blocked tracker two ways, then reports ready either way.
    "/tracked": """<!doctype html><body><script>
      window.ovenReady = false;
      fetch('/tracker.gif?via=fetch').catch(() => {}).finally(() => {
        const img = new Image(); img.onload = img.onerror = () => { window.ovenReady = true; };
        img.src = '/tracker.gif?via=img';
      });
    </script>""",
    # Reports what it finds in storage, then leaves state behind for the next job to find.
    "/stateful": """<!doctype html><body><script>
      window.ovenReady = false;
      const idb = () => new Promise(done => {
        const open = indexedDB.open('oven-leak-db');
        open.onupgradeneeded = () => open.result.createObjectStore('s');
        open.onerror = () => done('error');
        open.onsuccess = () => {
          const db = open.result, tx = db.transaction('s', 'readwrite');
          const store = tx.objectStore('s');
          const get = store.get('k');
          get.onsuccess = () => { const v = get.result || ''; store.put('leak', 'k');
            tx.oncomplete = () => { db.close(); done(v); }; };
        };
      });
      idb().then(stored => {
        const found = [localStorage.getItem('oven-leak'), document.cookie,
                       sessionStorage.getItem('oven-leak'), stored].join('|');
        return fetch('/seen?found=' + encodeURIComponent(found));
      }).finally(() => {
        localStorage.setItem('oven-leak', 'yes'); sessionStorage.setItem('oven-leak', 'yes');
        document.cookie = 'oven=leak; max-age=3600';
        window.ovenReady = true;
      });
    </script>""",
    # Pages that know nothing of oven (issue: real-world pieces), for the ready rules and the
    # quality flags. A 640x360 canvas below a header, animated, never setting ovenReady.
    "/unsignalled": """<!doctype html><body style="margin:8px;background:#fff">
      <h1 style="height:40px;margin:0">header</h1>
      <canvas id="c" width="640" height="360"></canvas><script>
      const g = document.getElementById("c").getContext("2d");
      const draw = (t) => { g.fillStyle = `hsl(${t / 10 % 360}, 80%, 50%)`;
        g.fillRect(0, 0, 640, 360); g.fillStyle = "#000"; g.fillRect(t / 5 % 600, 150, 40, 40);
        requestAnimationFrame(draw); };
      requestAnimationFrame(draw);
    </script>""",
    # A module whose import is missing: it never runs, the canvas stays empty.
    "/module-fails": """<!doctype html><body style="margin:0;background:#000">
      <canvas id="c" width="320" height="200"></canvas>
      <script type="module">import "/missing-module.js";
      document.getElementById("c").getContext("2d").fillRect(0, 0, 10, 10);</script>""",
    # Drawn once, never again.
    "/static": """<!doctype html><body style="margin:0">
      <canvas id="c" width="320" height="200"></canvas><script>
      const g = document.getElementById("c").getContext("2d");
      for (let i = 0; i < 20; i++) { g.fillStyle = `hsl(${i * 18}, 70%, 50%)`;
        g.fillRect(i * 16, 0, 16, 200); }
    </script>""",
    # Paints how many animation frames it has run as the red channel (declares the contract).
    "/rafcount": """<!doctype html><body style="margin:0"><canvas id="c" width="32" height="32">
      </canvas><script>
      window.ovenReady = false;
      const g = document.getElementById("c").getContext("2d");
      let count = 0;
      const draw = () => { count++; g.fillStyle = `rgb(${count % 256}, 0, 0)`;
        g.fillRect(0, 0, 32, 32); window.ovenReady = count > 2; requestAnimationFrame(draw); };
      requestAnimationFrame(draw);
    </script>""",
    # Nothing painted at all: what shows is the page's default background.
    "/empty": """<!doctype html><body style="margin:0"></body>""",
    # An element that appears after 300 ms, and a variable that turns 3 after 200 ms.
    "/late": """<!doctype html><body style="margin:0;background:#fff"><script>
      setTimeout(() => { window.answer = 3; }, 200);
      setTimeout(() => { const d = document.createElement("div"); d.id = "late";
        d.style.cssText = "width:100px;height:100px;background:#f00";
        document.body.appendChild(d); }, 300);
    </script>""",
    # Paints what it is asked for by the media it is shown in.
    "/media": """<!doctype html><body style="margin:0"><canvas id="c" width="64" height="64">
      </canvas><script>
      const dark = matchMedia("(prefers-color-scheme: dark)").matches;
      const still = matchMedia("(prefers-reduced-motion: reduce)").matches;
      const g = document.getElementById("c").getContext("2d");
      g.fillStyle = `rgb(${dark ? 255 : 0}, ${still ? 255 : 0}, 128)`; g.fillRect(0, 0, 64, 64);
    </script>""",
    # Throws from a script of its own but draws anyway: a page that knows nothing of oven.
    "/throws-but-draws": """<!doctype html><body style="margin:0"><canvas id="c" width="64"
      height="64"></canvas><script>
      const g = document.getElementById("c").getContext("2d");
      g.fillStyle = "#0a0"; g.fillRect(0, 0, 64, 64); g.fillStyle = "#fff"; g.fillRect(8, 8, 9, 9);
      setTimeout(() => { throw new Error("analytics exploded"); }, 0);
    </script>""",
}

# Pieces for canvas frames (oven.capture._canvas): one canvas filling the page, animated by
# requestAnimationFrame, drawn with alpha over the body's colour; each page below adds one
# thing that makes the canvas more, or less, than the picture.
_CANVAS_PIECE = """<!doctype html><html><head><style>html,body{margin:0;height:100%%;
  overflow:hidden;background:#234}canvas{display:block;width:100vw;height:100vh;%(style)s}
  </style></head><body><canvas id="c"></canvas>%(extra)s<script>
  %(before)s
  let c = document.getElementById("c"), dpr = devicePixelRatio;
  c.width = Math.round(innerWidth * dpr * %(scale)s);
  c.height = Math.round(innerHeight * dpr * %(scale)s);
  let g = c.getContext("2d"), n = 0;
  const draw = (t) => {
    n++;
    %(each)s
    g.clearRect(0, 0, c.width, c.height);
    g.fillStyle = "rgba(255, 200, 40, 0.6)"; g.fillRect(20 + n * 7, 30, 120, 90);
    g.fillStyle = "#e33"; g.beginPath(); g.arc(c.width / 2, c.height / 2, 40 + n * 2, 0, 7);
    g.fill();
    requestAnimationFrame(draw);
  };
  requestAnimationFrame(draw);
</script>"""


_PIXEL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763"
    "f8cfc0f01f0005fe02fea7d6a85a0000000049454e44ae426082")


def _canvas_page(style: str = "", extra: str = "", before: str = "", each: str = "",
                 scale: float = 1) -> str:
    return _CANVAS_PIECE % {"style": style, "extra": extra, "before": before, "each": each,
                            "scale": scale}


PAGES.update({
    "/canvas": _canvas_page(),
    # A label over the canvas, away from every point the probe hit-tests.
    "/canvas-label": _canvas_page(extra='<div style="position:fixed;left:40px;top:290px;'
                                  'width:100px;height:20px;background:#fff"></div>'),
    "/canvas-centre-label": _canvas_page(extra='<div style="position:fixed;left:45%;top:45%;'
                                         'width:10%;height:10%;background:#fff"></div>'),
    "/canvas-filter": _canvas_page(style="filter:invert(1)"),
    # The canvas's own CSS background shows through its translucent pixels.
    "/canvas-own-background": _canvas_page(style="background:#c0c"),
    "/canvas-translucent-background": _canvas_page(style="background:rgba(200, 0, 200, 0.5)"),
    "/canvas-half-size": _canvas_page(scale=0.5),
    # The page replaces, in its own world, what oven's probe calls.
    "/canvas-hostile": _canvas_page(before="""
      HTMLCanvasElement.prototype.toDataURL = () => "data:image/webp;base64," + "A".repeat(1e7);
      CanvasRenderingContext2D.prototype.drawImage = () => { throw new Error("no"); };
      document.elementFromPoint = () => null;"""),
    # Draws an image of another origin (localhost, the page being on 127.0.0.1) from its
    # first frame: the canvas is tainted and cannot be read. Its count starts at the image's
    # load, which comes at a real-time moment, so that every capture shows the same frames.
    "/canvas-tainted": _canvas_page(before="""window.ovenReady = false;
      const img = new Image();
      img.onload = () => { window.ovenReady = true; n = 0; };
      img.src = location.protocol + "//localhost:" + location.port + "/pixel.png";""",
                                    each="if (img.complete) g.drawImage(img, 0, 0, 40, 40);"),
    # Draws its first three frames, then nothing.
    "/canvas-paused": _canvas_page(each="if (n > 3) return;"),
    # Swallows, before any listener of the document hears it, the event a canvas frame steps
    # the page's clock with: the capturer must step it another way.
    "/canvas-step-swallowed": _canvas_page(before="""
      for (const type of ["__oven-advance", "__oven-pace"])
        window.addEventListener(type, (e) => e.stopImmediatePropagation(), true);"""),
    # Swaps its canvas for a new, green one at its fifth frame.
    "/canvas-swapped": _canvas_page(each="""if (n === 5) { const d = c.cloneNode();
      c.replaceWith(d); c = d; g = d.getContext("2d"); }"""),
})


@dataclass
class PageServer:
    """A loopback HTTP server recording every path it was asked for."""

    base: str
    hits: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def page_server() -> Iterator[PageServer]:
    state = PageServer(base="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits.append(self.path)
            if self.path == "/pixel.png":  # a real image, for pages that draw one
                self.send_response(200)
                self.send_header("content-type", "image/png")
                self.end_headers()
                self.wfile.write(_PIXEL_PNG)
                return
            body = PAGES.get(self.path.split("?")[0])
            self.send_response(200 if body is not None else 404)
            self.send_header("content-type", "text/html" if body else "image/gif")
            self.end_headers()
            self.wfile.write((body or "").encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="page-server", daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def make_settings(**overrides: object) -> BrowserSettings:
    values: dict[str, object] = {
        "pages": 2,
        "ready_timeout_s": 5.0,
        "blocked_url_patterns": [*DEFAULT_BLOCKED, BLOCKED_PATTERN],
    }
    values.update(overrides)
    return BrowserSettings.model_validate(values)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    marker = new_marker()
    shared = await Browser.launch(make_settings(), marker=marker)
    yield shared
    await shared.close(timeout_s=5.0)
    assert shared.leftover_pids() == []
    assert marked_pids(marker) == []
