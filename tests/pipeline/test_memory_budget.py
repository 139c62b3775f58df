"""The memory budget in a running service: a hog fails alone, /ready follows the pressure."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.oven_process import StartOven
from tests.waiting import wait_until

from .grab_client import grab_bytes, metric, submit, wait_for_job

ADMIN = "memory-test-token"

# Allocates ~16 MB of JS heap every 100 ms (~160 MB/s), and never stops.
HOG_PAGE = b"""<!doctype html><canvas id=c width=64 height=64></canvas><script>
const hoard = [];
window.ovenReady = true;
setInterval(() => { hoard.push(new Array(1 << 20).fill(hoard.length + 0.5)); }, 50);
</script>"""


@pytest.fixture
def hog_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(HOG_PAGE)))
            self.end_headers()
            self.wfile.write(HOG_PAGE)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_memory_hog_fails_alone_and_ready_follows_the_pressure(
    start_oven: StartOven, hog_server: str
) -> None:
    oven = start_oven({
        "server": {"admin_token": ADMIN},
        "browser": {"pages": 1},
        "pieces": {"allowed_origins": [hog_server], "allow_private": True},
        # A wide soft band (60-95 % of the budget) so the soft state lasts long enough to see.
        "memory": {"budget_bytes": 8 << 30, "soft_watermark": 0.6, "hard_watermark": 0.95},
    })
    idle = wait_until("a full memory sample", lambda: httpx.get(
        f"{oven.url}/status").json()["sections"]["memory"]["tree_pss_bytes"], timeout=20)
    # Twice the idle footprint: soft at 1.2x idle, hard at 1.9x.
    config = oven.workdir / "oven.toml"
    config.write_text(config.read_text().replace(f"budget_bytes = {8 << 30}",
                                                 f"budget_bytes = {int(idle * 2)}"))
    reload = httpx.post(f"{oven.url}/admin/reload",
                        headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
    assert reload.json()["applied"] == ["memory.budget_bytes"], reload.text
    assert httpx.get(f"{oven.url}/ready").status_code == 200

    hog = submit(oven, url=f"{hog_server}/hog", format="webp", frames=200, fps=10,
                 width=64, height=64)

    def ready_says_memory() -> bool:
        answer = httpx.get(f"{oven.url}/ready")
        return answer.status_code == 503 and "memory" in answer.json()["reasons"]

    wait_until("/ready to report memory pressure", ready_says_memory, timeout=30, interval=0.05)
    failed = wait_for_job(oven, hog["id"], timeout=60)
    assert failed["state"] == "failed"
    assert "memory budget exceeded" in failed["error"]
    assert failed["attempts"] == 1  # permanent: not retried
    assert metric(oven, "oven_memory_actions_total", {"action": "fail_job"}) >= 1

    wait_until("/ready to recover", lambda: httpx.get(f"{oven.url}/ready").status_code == 200,
               timeout=30)
    view, _ = grab_bytes(oven, piece="still", format="png", width=160, height=90)
    assert view["state"] == "complete"
    health = httpx.get(f"{oven.url}/status").json()
    assert all(a["state"] == "running" and a["restarts"] == 0 for a in health["actors"])


def test_over_the_hard_watermark_with_no_job_to_blame_the_browser_is_recycled_once(
    start_oven: StartOven,
) -> None:
    # A budget below oven's idle footprint: no page to blame, so the browser is recycled, once;
    # the service stays up (alive, not ready) instead of recycling in a loop.
    # The tree's PSS splits shared pages (Chromium's binary, libpython, node) between every
    # process on the machine that maps them, so how far a fixed budget sits below it depends on
    # what else runs: beside another oven, a relaunched browser's tree measured 232 MB, under
    # the hard watermark of a 256 MB budget, and the refusal to loop never came. 16 MiB (the
    # least the setting takes) is below oven's own Python process alone (~57 MB of private
    # anonymous memory, which no neighbour shares), so the tree is over the hard watermark at
    # every sample, with or without a browser. Ceilings off: the browser's cgroup would
    # otherwise be sized from this budget and kill Chromium at launch.
    oven = start_oven({"memory": {"budget_bytes": 16 << 20, "ceiling": "off"}})
    wait_until("a memory recycle", lambda: metric(
        oven, "oven_browser_restarts_total", {"reason": "memory"}) >= 1, timeout=30)
    ready = httpx.get(f"{oven.url}/ready")
    assert ready.status_code == 503 and "memory" in ready.json()["reasons"]
    wait_until("the refusal to loop", lambda: "still over the hard watermark" in oven.log,
               timeout=30)
    assert metric(oven, "oven_browser_restarts_total", {"reason": "memory"}) == 1
    assert httpx.get(f"{oven.url}/health").status_code == 200
