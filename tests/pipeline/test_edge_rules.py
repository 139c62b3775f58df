"""What the HTTP edge refuses (SSRF targets, limits, malformed bodies); refusing costs nothing."""

from __future__ import annotations

import http.client
from typing import Any

import httpx
import pytest

from tests.oven_process import OvenProcess

from .conftest import MAX_BODY_BYTES
from .grab_client import post_grab


def assert_json_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] and error["message"], error
    return error


@pytest.mark.parametrize("url", [
    "file:///etc/passwd",
    "javascript:alert(1)",
    "http://169.254.169.254/latest/meta-data/",
    "http://127.0.0.1:{port}/pieces/still/",
    "http://[::1]:{port}/pieces/still/",
])
def test_urls_outside_the_allow_list_are_refused_with_403(shared_oven: OvenProcess,
                                                          url: str) -> None:
    response = post_grab(shared_oven, url=url.format(port=shared_oven.port), format="png")
    error = assert_json_error(response, 403)
    assert error["code"] == "target_refused"


def test_an_allowed_origin_that_resolves_to_loopback_is_refused_as_private(
        shared_oven: OvenProcess) -> None:
    response = post_grab(shared_oven, url=f"http://localhost:{shared_oven.port}/pieces/still/",
                         format="png")
    error = assert_json_error(response, 403)
    assert "private" in error["message"], error


@pytest.mark.parametrize(("body", "field"), [
    ({"width": 1921}, "width"),
    ({"height": 5000}, "height"),
    ({"frames": 0}, "frames"),
    ({"format": "bmp"}, "format"),
    ({"density": 9}, "density"),
    ({"format": "webp", "frames": 301}, "frames"),
    ({"piece": "../etc"}, "piece"),
])
def test_out_of_range_or_unknown_values_answer_422_naming_the_field(
        shared_oven: OvenProcess, body: dict[str, Any], field: str) -> None:
    response = post_grab(shared_oven, **({"piece": "still", "format": "png"} | body))
    error = assert_json_error(response, 422)
    assert field in error["message"], error


def test_a_dot_dot_piece_in_the_path_is_refused(shared_oven: OvenProcess) -> None:
    # http.client sends the path exactly as written; httpx would normalise the dots away.
    for path in ("/grab/png/64/64/%2e%2e", "/grab/png/64/64/%2E%2E%2Fetc",
                 "/icon/64/%2e%2e.png"):
        conn = http.client.HTTPConnection("127.0.0.1", shared_oven.port, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            status, body = response.status, response.read()
        finally:
            conn.close()
        assert 400 <= status < 500, (path, status, body)


def test_a_body_that_is_not_json_answers_400(shared_oven: OvenProcess) -> None:
    response = httpx.post(f"{shared_oven.url}/grabs", content=b'{"piece": "still",',
                          headers={"content-type": "application/json"}, timeout=10)
    assert_json_error(response, 400)


def test_a_body_that_is_not_declared_json_answers_415(shared_oven: OvenProcess) -> None:
    response = httpx.post(f"{shared_oven.url}/grabs", content=b'{"piece": "still"}',
                          headers={"content-type": "text/plain"}, timeout=10)
    assert_json_error(response, 415)


def test_a_body_over_the_configured_limit_answers_413(shared_oven: OvenProcess) -> None:
    padding = "x" * (MAX_BODY_BYTES + 1)
    response = httpx.post(f"{shared_oven.url}/grabs",
                          content=f'{{"piece": "still", "pad": "{padding}"}}'.encode(),
                          headers={"content-type": "application/json"}, timeout=10)
    assert_json_error(response, 413)


def test_after_all_the_refusals_the_service_is_healthy_and_no_actor_restarted(
        shared_oven: OvenProcess) -> None:
    for body in ({"url": "file:///etc/passwd"}, {"piece": "still", "width": 99999}):
        assert post_grab(shared_oven, **body).status_code in (403, 422)
    assert httpx.get(f"{shared_oven.url}/health", timeout=10).status_code == 200
    status = httpx.get(f"{shared_oven.url}/status", timeout=10).json()
    assert status["healthy"] is True
    actors = {a["name"]: (a["state"], a["restarts"]) for a in status["actors"]}
    assert actors and all(v == ("running", 0) for v in actors.values()), actors
