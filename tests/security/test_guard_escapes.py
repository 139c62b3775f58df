"""A raw-URL page cannot escape the request guard through what it starts beside itself: popups
(window.open, target=_blank links, about:blank popups it writes into), dedicated workers (nested
ones too), shared workers and service workers; and nothing it started outlives its job.

Real Chromium (a Browser of its own, the same setup as test_page_guard.py): the page lives at a
public IP literal answered by a recording proxy on loopback; requests for 127.0.0.1 go straight
to the private recording server, which must see nothing, during the job or after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from oven.capture import (
    Browser,
    BrowserSettings,
    CaptureRequest,
    PieceError,
    capture,
    marked_pids,
    new_marker,
)

from .conftest import chromium_args
from .servers import Answer, RecordingServer, Reply
from .test_page_guard import NO_LNA, PUBLIC

pytestmark = pytest.mark.asyncio(loop_scope="module")

JS = "text/javascript"


def _answer(private: str) -> Answer:
    # 16 fetches in flight at all times, from each worker: a teardown that lifts the guard
    # a few ms early is caught (every 20 ms, one in ~10 failing jobs escaped beside a CPU hog).
    forever = (f"for (let i = 0; i < 16; i++) (async () => {{ for (;;) "
               f"await fetch('{private}/' + NAME).catch(() => {{}}); }})();")
    scripts = {
        "/worker.js": "const NAME = 'worker'; " + forever
        + "new Worker('/nested.js'); fetch('/to-private-from-worker').catch(() => {});",
        "/nested.js": "const NAME = 'nested-worker'; " + forever,
        "/shared.js": "const NAME = 'shared-worker'; " + forever + "onconnect = () => {};",
        "/sw.js": f"self.addEventListener('install', e => e.waitUntil("
                  f"fetch('{private}/service-worker').catch(() => {{}})));",
    }
    page = f"""<!doctype html><canvas id="c" width="64" height="64"></canvas><script>
      window.ovenReady = false;
      const g = document.getElementById("c").getContext("2d");
      g.fillStyle = "#00ff00"; g.fillRect(0, 0, 64, 64);
      window.open("{private}/popup");
      window.open("/to-private-popup");
      const blank = window.open("about:blank");
      if (blank) blank.document.write('<img src="{private}/written-into-popup">');
      const a = document.createElement("a");
      a.href = "{private}/blank-link"; a.target = "_blank";
      document.documentElement.appendChild(a); a.click();
      new Worker("/worker.js");
      new Worker(URL.createObjectURL(new Blob(
        ["const NAME = 'blob-worker'; {forever}"], {{type: "text/javascript"}})));
      try {{ new SharedWorker("/shared.js"); }} catch (e) {{}}
      if (navigator.serviceWorker) navigator.serviceWorker.register("/sw.js").catch(() => {{}});
      setTimeout(() => {{ window.ovenReady = true; }}, 800);
    </script>""".encode()
    # The same page, failing once its workers run: the piece throws (a 404 can fail the job
    # before they start, and then the teardown is not under test).
    throwing = page.replace(b"</script>", b"setTimeout(() => { throw new Error('on purpose'); },"
                                          b" 300);</script>")

    # A chain of popups: each opens the next 10 ms after it starts, forever (~25 a second).
    chain = b"""<!doctype html><canvas id="c" width="64" height="64"></canvas><script>
      window.ovenReady = false;
      setTimeout(function next() {
        const w = window.open("about:blank");
        w.document.write("<scr" + "ipt>setTimeout(" + next.toString() + ", 10)</scr" + "ipt>");
        w.document.close();
      }, 10);
      setTimeout(() => { window.ovenReady = true; }, 800);
    </script>"""

    def answer(host: str, path: str) -> Reply:
        if host != PUBLIC:
            return Reply(status=502, body=b"the test proxy serves one host")
        if path == "/escape":
            return Reply(body=page)
        if path == "/chain":
            return Reply(body=chain)
        if path == "/escape-failing":  # runs the same page, but the job fails (HTTP 404)
            return Reply(status=404, body=page)
        if path == "/escape-throwing":
            return Reply(body=throwing)
        if path == "/escape-slow":  # for the control: time for every popup's redirect to land
            return Reply(body=page.replace(b"}, 800);", b"}, 2500);"))
        if path in scripts:
            return Reply(body=scripts[path].encode(), content_type=JS)
        if path.startswith("/to-private-"):
            return Reply(status=302, location=f"{private}/redirected-{path[len('/to-private-'):]}")
        return Reply(status=404)

    return answer


@pytest.fixture(scope="module")
def private_server() -> Iterator[RecordingServer]:
    with RecordingServer(lambda host, path: Reply(body=b"secret")).running() as server:
        yield server


@pytest.fixture(scope="module")
def public_proxy(private_server: RecordingServer) -> Iterator[RecordingServer]:
    answer = _answer(f"http://127.0.0.1:{private_server.port}")
    with RecordingServer(answer).running() as proxy:
        yield proxy


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(public_proxy: RecordingServer) -> AsyncIterator[Browser]:
    marker = new_marker()
    settings = BrowserSettings.model_validate({
        "pages": 1, "ready_timeout_s": 10.0,
        "args": chromium_args(disable=NO_LNA),
        "upstream_proxy": f"127.0.0.1:{public_proxy.port}",
    })
    launched = await Browser.launch(settings, marker=marker)
    yield launched
    await launched.close(timeout_s=5.0)
    assert launched.leftover_pids() == []
    assert marked_pids(marker) == []


async def test_popups_and_workers_of_a_raw_url_page_never_reach_a_private_address(
        browser: Browser, public_proxy: RecordingServer, private_server: RecordingServer,
        tmp_path: Path) -> None:
    request = CaptureRequest(url=f"http://{PUBLIC}/escape", width=64, height=64,
                             guard="public")
    result = await capture(browser, request, tmp_path)
    assert result.ready == "contract", result
    assert "/escape" in public_proxy.paths()
    assert "/worker.js" in public_proxy.paths(), "the worker never started: the test is vacuous"
    # Workers poll every 20 ms: anything still running after the job would show up here.
    await asyncio.sleep(1.5)
    assert private_server.paths() == [], sorted(set(private_server.paths()))


async def test_nothing_a_raw_url_page_opened_survives_its_job(
        browser: Browser, tmp_path: Path) -> None:
    request = CaptureRequest(url=f"http://{PUBLIC}/escape", width=64, height=64,
                             guard="public")
    await capture(browser, request, tmp_path)
    targets = await browser.targets.list()
    pages = [t for t in targets if t["type"] == "page"]
    others = [t for t in targets if "worker" in t["type"]]
    assert [p["url"] for p in pages] == ["about:blank"], targets
    assert others == [], targets


@pytest.mark.parametrize(("path", "error"), [("/escape-failing", "answered 404"),
                                           ("/escape-throwing", "piece threw")])
async def test_a_failing_raw_url_job_stays_guarded_while_its_pages_are_torn_down(
        browser: Browser, private_server: RecordingServer, tmp_path: Path,
        path: str, error: str) -> None:
    # A failing job's slot is discarded (its context closed), not wiped. The guard used to be
    # lifted before the context closed, and its workers' fetches escaped (failed first, before
    # the fix in Slot.discard: 2 of 4 runs of five jobs). Ten in a row, as an escape needs a
    # fetch in flight at that moment.
    before = len(private_server.hits)
    request = CaptureRequest(url=f"http://{PUBLIC}{path}", width=64, height=64,
                             guard="public")
    for _ in range(10):
        with pytest.raises(PieceError, match=error):
            await capture(browser, request, tmp_path)
        targets = await browser.targets.list()
        assert [t for t in targets if "worker" in t["type"]] == [], targets
    await asyncio.sleep(1.5)
    assert private_server.paths()[before:] == [], sorted(set(private_server.paths()[before:]))


@pytest.mark.parametrize("guard", ["public", "off"])
async def test_a_chain_of_popups_ends_with_its_job(
        browser: Browser, tmp_path: Path, guard: str) -> None:
    # Unguarded, the chain used to outlive the job, growing (53 pages a second after it, and
    # on into the next clients' jobs): the wipe closed the pages Playwright had reported once.
    request = CaptureRequest(url=f"http://{PUBLIC}/chain", width=64, height=64, guard=guard)
    result = await capture(browser, request, tmp_path)
    assert result.ready == "contract", result
    await asyncio.sleep(1.0)  # a popup left behind would have opened ~25 more by now
    targets = await browser.targets.list()
    assert [t["url"] for t in targets if t["type"] == "page"] == ["about:blank"], targets


async def test_control_an_unguarded_page_reaches_the_private_server_but_its_popups_close(
        browser: Browser, private_server: RecordingServer, tmp_path: Path) -> None:
    # The operator's own pages are not guarded: this shows the page really does all it tries
    # (the tests above are not vacuous), and that its popups still do not outlive the job.
    before = len(private_server.hits)
    request = CaptureRequest(url=f"http://{PUBLIC}/escape-slow", width=64, height=64,
                             guard="off")
    await capture(browser, request, tmp_path)
    reached = {path for _, path in private_server.hits[before:]}
    assert reached >= {"/popup", "/redirected-popup", "/blank-link", "/worker", "/nested-worker",
                       "/blob-worker", "/redirected-from-worker"}, reached
    # Disabled in oven's Chromium (Playwright detaches from them, so no hook could see them);
    # service workers are blocked by the context.
    assert "/shared-worker" not in reached and "/service-worker" not in reached, reached
    targets = await browser.targets.list()
    assert [t["url"] for t in targets if t["type"] == "page"] == ["about:blank"], targets
    assert [t for t in targets if "worker" in t["type"]] == [], targets
