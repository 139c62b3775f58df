"""/health and /ready skip the app's stack (a load balancer drops an instance whose probes are
slow) yet answer exactly as the routes do, inside CORS, on a real `oven serve`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.oven_process import OvenProcess

ORIGIN = "https://dashboard.example"


@pytest.fixture(scope="module")
def oven(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvenProcess]:
    process = OvenProcess(Path(tmp_path_factory.mktemp("probes")), config={
        "browser": {"pages": 1}, "edge": {"cors_origins": [ORIGIN]}}).start()
    yield process
    process.stop()


def _headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k != "date"}


@pytest.mark.parametrize("path, body", [
    ("/health", {"status": "ok"}),
    ("/ready", {"ready": True, "reasons": []}),
    ("/health?verbose=1", {"status": "ok"}),
])
def test_a_probe_answers_with_the_same_body_and_headers_as_its_route(
    oven: OvenProcess, path: str, body: dict[str, object]
) -> None:
    got = httpx.get(f"{oven.url}{path}")
    # HEAD is not on the fast path: the full stack's headers for the same route.
    head = httpx.head(f"{oven.url}{path}")

    assert got.status_code == head.status_code == 200
    assert got.json() == body
    assert _headers(got) == _headers(head)
    assert got.headers["content-type"] == "application/json"


def test_a_probe_from_an_allowed_origin_still_carries_the_cors_headers(oven: OvenProcess) -> None:
    for path in ("/health", "/ready"):
        got = httpx.get(f"{oven.url}{path}", headers={"Origin": ORIGIN})
        assert got.status_code == 200
        assert got.headers["access-control-allow-origin"] == ORIGIN


@pytest.mark.parametrize("method", ["POST", "DELETE", "PUT"])
def test_a_probe_path_with_another_method_is_refused_as_before(
    oven: OvenProcess, method: str
) -> None:
    got = httpx.request(method, f"{oven.url}/health")

    assert got.status_code == 405
    assert got.json()["error"]["code"]
