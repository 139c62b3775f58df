"""Raw-URL captures cannot reach private addresses through the page: redirects, sub-resources,
frames, fetch and WebSockets are checked inside Chromium, not just the first URL.

How the setup works (no internet here, and an allowed origin must resolve to a public address):
the piece lives at http://93.184.216.34/ (a public IP literal, so the edge's DNS check passes
without DNS), and oven's egress proxy hands what passes on to a recording server on loopback
(`upstream_proxy`) that answers for that "public" host. Loopback is never handed on, so
requests to 127.0.0.1/localhost that pass go straight to a second recording server, the
private one; a request for any other host (169.254.169.254) would arrive at the proxy. The
page points at the private server in every way it can; afterwards the private server must
have seen nothing. The control runs the same page with `allow_private = true` and shows that
the private server is reached when the guard does not refuse it: the setup is not vacuous.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.oven_process import OvenProcess, StartOven
from tests.pipeline.grab_client import metric, submit, wait_for_job

from .conftest import chromium_args
from .servers import RecordingServer, Reply

PUBLIC = "93.184.216.34"
# Chromium's own Local Network Access checks would block some of these requests too; they are
# turned off so that oven's guard is the only thing between the page and the private server.
NO_LNA = ("LocalNetworkAccessChecks", "BlockInsecurePrivateNetworkRequests",
          "PrivateNetworkAccessSendPreflights")
PRIVATE_PATHS = {"/img", "/redirected-img", "/fetch", "/redirected-frame"}


def _page(private_port: int) -> bytes:
    private = f"127.0.0.1:{private_port}"
    return f"""<!doctype html>
<canvas id="c" width="64" height="64"></canvas>
<img src="http://{private}/img">
<img src="/to-private-img">
<img src="http://169.254.169.254/latest/meta-data/">
<iframe src="/to-private-frame"></iframe>
<script>
  window.ovenReady = false;
  const g = document.getElementById("c").getContext("2d");
  g.fillStyle = "#0000ff"; g.fillRect(0, 0, 64, 64);
  fetch("http://localhost:{private_port}/fetch").catch(() => {{}});
  try {{ new WebSocket("ws://{private}/ws"); }} catch (e) {{}}
  addEventListener("load", () => setTimeout(() => {{ window.ovenReady = true; }}, 300));
</script>""".encode()


@pytest.fixture
def private_server() -> Iterator[RecordingServer]:
    with RecordingServer(lambda host, path: Reply(body=b"secret")).running() as server:
        yield server


@pytest.fixture
def public_proxy(private_server: RecordingServer) -> Iterator[RecordingServer]:
    target = f"http://127.0.0.1:{private_server.port}"

    def answer(host: str, path: str) -> Reply:
        if host != PUBLIC:
            return Reply(status=502, body=b"the test proxy serves one host")
        if path == "/page":
            return Reply(body=_page(private_server.port))
        if path.startswith("/to-private-"):
            return Reply(status=302, location=f"{target}/redirected-{path.split('-')[-1]}")
        if path == "/to-private-page":
            return Reply(status=302, location=f"{target}/landing")
        return Reply(status=404)

    with RecordingServer(answer).running() as proxy:
        yield proxy


def _oven(start_oven: StartOven, proxy: RecordingServer, *, allow_private: bool) -> OvenProcess:
    return start_oven({
        "browser": {"pages": 1, "args": chromium_args(disable=NO_LNA),
                    "upstream_proxy": f"127.0.0.1:{proxy.port}"},
        "pieces": {"allowed_origins": [f"http://{PUBLIC}"], "allow_private": allow_private},
    })


def test_sub_resources_redirects_and_frames_to_private_addresses_never_leave_the_page(
        start_oven: StartOven, public_proxy: RecordingServer,
        private_server: RecordingServer) -> None:
    oven = _oven(start_oven, public_proxy, allow_private=False)
    accepted = submit(oven, url=f"http://{PUBLIC}/page", format="png", width=64, height=64)
    view = wait_for_job(oven, accepted["id"], timeout=90)

    assert view["state"] == "complete", view
    assert private_server.hits == [], "the page reached the private server"
    # (Chromium's own background requests, e.g. to clients2.google.com, pass the proxy too.)
    assert "169.254.169.254" not in public_proxy.hosts(), "a link-local host reached the proxy"
    assert "/page" in public_proxy.paths()
    blocked = " ".join(view["result"]["blocked_requests"])
    # The WebSocket is refused by the egress proxy, as the tunnel Chromium asks it for.
    websocket = f"CONNECT 127.0.0.1:{private_server.port} (https or WebSocket)"
    for path in (*PRIVATE_PATHS, websocket, "169.254.169.254"):
        assert path in blocked, (path, view["result"]["blocked_requests"])
    assert metric(oven, "oven_capture_blocked_requests_total",
                  {"reason": "private_address"}) >= 5


def test_a_redirect_of_the_page_itself_to_a_private_address_fails_the_job_naming_it(
        start_oven: StartOven, public_proxy: RecordingServer,
        private_server: RecordingServer) -> None:
    oven = _oven(start_oven, public_proxy, allow_private=False)
    accepted = submit(oven, url=f"http://{PUBLIC}/to-private-page", format="png",
                      width=64, height=64)
    view = wait_for_job(oven, accepted["id"], timeout=90)

    assert view["state"] == "failed", view
    assert "blocked private_address" in view["error"], view["error"]
    assert private_server.hits == []


def test_control_with_private_addresses_allowed_the_same_page_reaches_the_private_server(
        start_oven: StartOven, public_proxy: RecordingServer,
        private_server: RecordingServer) -> None:
    oven = _oven(start_oven, public_proxy, allow_private=True)
    accepted = submit(oven, url=f"http://{PUBLIC}/page", format="png", width=64, height=64)
    view = wait_for_job(oven, accepted["id"], timeout=90)

    assert view["state"] == "complete", view
    reached = set(private_server.paths())
    assert reached >= {*PRIVATE_PATHS, "/ws"}, reached
