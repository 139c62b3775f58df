"""Ready-rule benchmark: grabs of pages that know nothing of oven's ready contract.

Three such pages (a canvas 2D animation, a WebGL animation, a DOM/CSS page) are served from a
loopback origin; each is grabbed one at a time, 16 frames at 20 fps, 640x360, animated WebP,
real clock, against a warm `oven serve` on default settings; once with `[browser] ready_rule =
"contract"` (what every such page paid before the painted rule: the whole ready timeout) and once
with the default `auto`. Prints one JSON line: per rule, the median wall per grab (submit →
complete), the median ready stage and the rules the jobs reported.

    .venv/bin/python bench/ready.py [--grabs 3]   # grabs per page and rule
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from oven_process import OvenProcess

PAGES = {
    "/canvas2d": """<!doctype html><body style="margin:0;background:#111">
      <canvas id="c" width="640" height="360"></canvas><script>
      const g = document.getElementById("c").getContext("2d");
      const draw = (t) => { g.fillStyle = "#111"; g.fillRect(0, 0, 640, 360);
        for (let i = 0; i < 40; i++) { g.fillStyle = `hsl(${(i * 9 + t / 20) % 360}, 80%, 60%)`;
          g.beginPath(); g.arc(320 + Math.cos(t / 700 + i) * 150, 180 + Math.sin(t / 500 + i) * 120,
                               12, 0, 7); g.fill(); }
        requestAnimationFrame(draw); };
      requestAnimationFrame(draw);
    </script>""",
    "/webgl": """<!doctype html><body style="margin:0"><canvas id="c" width="640" height="360">
      </canvas><script>
      const gl = document.getElementById("c").getContext("webgl");
      const draw = (t) => { gl.clearColor((Math.sin(t / 300) + 1) / 2, 0.3, 0.6, 1);
        gl.clear(gl.COLOR_BUFFER_BIT); requestAnimationFrame(draw); };
      requestAnimationFrame(draw);
    </script>""",
    "/dom": """<!doctype html><style>
      @keyframes spin { to { transform: rotate(360deg) } }
      div { width: 120px; height: 120px; margin: 100px auto; background: #e63;
            animation: spin 2s linear infinite }
    </style><body style="margin:0;background:#fff"><div></div>""",
}


def serve_pages() -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = PAGES.get(self.path.split("?")[0])
            self.send_response(200 if body else 404)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write((body or "").encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def grab(url: str, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    t0 = time.monotonic()
    job_id = httpx.post(f"{url}/grabs", json=body, timeout=30).json()["id"]
    while True:
        view: dict[str, Any] = httpx.get(f"{url}/grabs/{job_id}", timeout=10).json()
        if view["state"] in ("complete", "failed", "cancelled"):
            return time.monotonic() - t0, view
        time.sleep(0.02)


def run(rule: str, origin: str, grabs: int, tmp: Path) -> dict[str, Any]:
    oven = OvenProcess(tmp / rule, config={
        "pieces": {"allowed_origins": [origin], "allow_private": True},
        "browser": {"ready_rule": rule}})
    (tmp / rule).mkdir()
    oven.start()
    try:
        grab(oven.url, {"piece": "anim", "format": "webp", "frames": 16})  # warm
        walls, readies, rules, failed = [], [], Counter[str](), 0
        for _ in range(grabs):
            for path in PAGES:
                body = {"url": f"{origin}{path}?{uuid.uuid4().hex[:8]}", "format": "webp",
                        "width": 640, "height": 360, "frames": 16, "fps": 20}
                wall, view = grab(oven.url, body)
                if view["state"] != "complete":
                    failed += 1
                    continue
                walls.append(wall)
                readies.append(view["timings"].get("ready", 0.0))
                rules[view["result"]["ready"]] += 1
    finally:
        oven.stop()
    return {"wall_per_grab_p50_s": round(statistics.median(walls), 3),
            "wall_per_grab_max_s": round(max(walls), 3),
            "ready_stage_p50_s": round(statistics.median(readies), 3),
            "rules": dict(rules), "failed": failed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grabs", type=int, default=3, help="grabs per page and rule")
    args = parser.parse_args()
    server, origin = serve_pages()
    try:
        with tempfile.TemporaryDirectory(prefix="oven-bench-ready-") as tmp:
            before = run("contract", origin, args.grabs, Path(tmp))
            after = run("auto", origin, args.grabs, Path(tmp))
    finally:
        server.shutdown()
    print(json.dumps({"bench": "ready", "pages": len(PAGES), "grabs_per_page": args.grabs,
                      "frames": 16, "size": "640x360", "contract_rule": before,
                      "auto_rule": after,
                      "speedup": round(before["wall_per_grab_p50_s"]
                                       / after["wall_per_grab_p50_s"], 2)}))


if __name__ == "__main__":
    main()
