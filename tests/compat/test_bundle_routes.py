"""The old bundler's routes against a real `oven serve`: GET /bundle-html (formats html, json,
base64, stream; nominify; piece or code), POST /bundle-prewarm, GET /bundle-status. Status,
content type, headers and body shape of each, then every hostile form of their inputs: each a
4xx JSON error, and the service still healthy after them.

Pieces come from tests/bundles/site.py through [pieces] url_template and code_template, as a
production service names its own host.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.bundles.site import PieceSite, piece_site
from tests.oven_process import OvenProcess, running_oven
from tests.waiting import wait_until

HEX64 = re.compile(r"^[0-9a-f]{64}$")
SUMMARY_KEYS = {"piece", "hash", "size", "files", "source_bytes", "minified", "warnings",
                "made_at", "build_s", "cached"}
MAX_PREWARM = 5


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PieceSite]:
    with piece_site(tmp_path_factory.mktemp("compat-piece-site")) as running:
        yield running


@pytest.fixture(scope="module")
def oven(site: PieceSite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvenProcess]:
    config: dict[str, dict[str, object]] = {
        "pieces": {"url_template": site.template, "code_template": site.origin + "/{code}/"},
        "browser": {"pages": 1},
        "compat.bundles": {"max_prewarm": MAX_PREWARM},
        # The hostile list sends many requests quickly from one client.
        "edge": {"rate_limit_per_s": 10_000, "rate_limit_burst": 100_000},
    }
    with running_oven(tmp_path_factory.mktemp("compat-bundles-oven"), config) as served:
        yield served


def get(oven: OvenProcess, params: dict[str, str], **kw: Any) -> httpx.Response:
    return httpx.get(f"{oven.url}/bundle-html", params=params, timeout=60, **kw)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error


def events(oven: OvenProcess, params: dict[str, str],
           headers: dict[str, str] | None = None) -> tuple[httpx.Response, list[tuple[str, Any]]]:
    """Every server-sent event of one stream, which the server ends after its result."""
    found: list[tuple[str, Any]] = []
    with httpx.stream("GET", f"{oven.url}/bundle-html", params=params, headers=headers,
                      timeout=60) as response:
        kind = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                found.append((kind, json.loads(line.removeprefix("data: "))))
    return response, found


# -- GET /bundle-html --------------------------------------------------------------------------


def test_bundle_html_answers_the_piece_as_one_html_file_with_its_hash_and_cache_headers(
        oven: OvenProcess) -> None:
    first = get(oven, {"piece": "gallery"})
    assert first.status_code == 200
    assert first.headers["content-type"] == "text/html; charset=utf-8"
    assert HEX64.match(first.headers["x-bundle-hash"])
    assert first.headers["etag"] == f'"{first.headers["x-bundle-hash"]}"'
    assert first.headers["cache-control"] == "no-cache"
    assert first.headers["content-disposition"] == 'inline; filename="gallery.html"'
    assert first.content.startswith(b"<!DOCTYPE html>")
    assert b'<script type="importmap">' in first.content
    again = get(oven, {"piece": "gallery"})
    assert again.headers["x-bundle-cache"] == "hit"
    assert again.headers["x-bundle-hash"] == first.headers["x-bundle-hash"]
    assert again.content == first.content


@pytest.mark.parametrize("fmt", ["html", "base64"])
def test_a_client_holding_the_current_file_gets_a_304(oven: OvenProcess, fmt: str) -> None:
    first = get(oven, {"piece": "gallery", "format": fmt})
    etag = first.headers["etag"]
    assert etag == (f'"{first.headers["x-bundle-hash"]}"' if fmt == "html"
                    else f'"{first.headers["x-bundle-hash"]}.base64"')
    held = get(oven, {"piece": "gallery", "format": fmt},
               headers={"If-None-Match": f'W/"stale", {etag}'})
    assert held.status_code == 304 and held.content == b""
    assert held.headers["etag"] == etag
    other = get(oven, {"piece": "gallery", "format": fmt}, headers={"If-None-Match": '"x"'})
    assert other.status_code == 200 and other.content == first.content
    assert "etag" not in get(oven, {"piece": "gallery", "format": "json"}).headers


def test_format_json_answers_the_html_with_its_piece_size_hash_and_files(
        oven: OvenProcess) -> None:
    response = get(oven, {"piece": "gallery", "format": "json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == SUMMARY_KEYS | {"html"}
    assert body["piece"] == "gallery" and HEX64.match(body["hash"])
    assert body["size"] == len(body["html"].encode()) and body["minified"] is True
    assert body["files"] == 17 and body["warnings"] == []
    assert body["hash"] == response.headers["x-bundle-hash"]


def test_format_base64_answers_the_same_file_in_base64(oven: OvenProcess) -> None:
    html = get(oven, {"piece": "gallery"}).content
    response = get(oven, {"piece": "gallery", "format": "base64"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert base64.b64decode(response.text, validate=True) == html


@pytest.mark.parametrize("how", ["format", "accept"])
def test_a_stream_sends_progress_then_the_bundle_and_ends(
        oven: OvenProcess, how: str) -> None:
    params = {"piece": "gallery", "nominify": "true"}  # its own build: progress to see
    headers = None
    if how == "format":
        params["format"] = "stream"
    else:
        headers = {"Accept": "text/event-stream"}
    response, found = events(oven, params, headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    kinds = [kind for kind, _ in found]
    assert kinds[-1] == "complete" and kinds.count("complete") == 1
    assert set(kinds[:-1]) <= {"progress"}
    final = found[-1][1]
    assert set(final) == SUMMARY_KEYS | {"html"} and final["minified"] is False
    if not final["cached"]:
        stages = [body["stage"] for kind, body in found if kind == "progress"]
        assert stages[0] == "started" and "fetching" in stages and stages[-1] == "inlining"


def test_a_stream_of_a_piece_that_cannot_be_bundled_ends_with_an_error_event(
        oven: OvenProcess) -> None:
    response, found = events(oven, {"piece": "redirect-private", "format": "stream"})
    assert response.status_code == 200
    kind, body = found[-1]
    assert kind == "error" and body["error"]["code"] == "fetch_refused"
    assert body["error"]["status"] == 422


def test_nominify_keeps_the_sources_as_they_are_under_another_hash(oven: OvenProcess) -> None:
    small = get(oven, {"piece": "gallery", "format": "json"}).json()
    whole = get(oven, {"piece": "gallery", "format": "json", "nominify": "1"}).json()
    assert whole["minified"] is False and whole["hash"] != small["hash"]
    assert "comments and whitespace the minifier takes out" in whole["html"]
    assert "comments and whitespace the minifier takes out" not in small["html"]
    assert get(oven, {"piece": "gallery", "nocompress": "1"}).status_code == 200


def test_code_names_a_kidlisp_code_through_the_code_template(oven: OvenProcess) -> None:
    by_code = get(oven, {"code": "gallery", "format": "json"}).json()
    assert by_code["piece"] == "$gallery"
    assert by_code["hash"] == get(oven, {"piece": "gallery", "format": "json"}).json()["hash"]
    assert get(oven, {"code": "$gallery"}).headers["x-bundle-hash"] == by_code["hash"]


def test_a_changed_source_makes_a_new_bundle_and_the_old_one_answers_again_once_restored(
        oven: OvenProcess, site: PieceSite) -> None:
    piece = site.root / "edited"
    piece.mkdir()
    (piece / "index.html").write_text('<!doctype html><script src="s.js"></script>')
    script = piece / "s.js"
    script.write_text("window.version = 1;")
    first = get(oven, {"piece": "edited"})
    script.write_text("window.version = 2;")
    second = get(oven, {"piece": "edited"})
    assert second.headers["x-bundle-hash"] != first.headers["x-bundle-hash"]
    assert second.headers["x-bundle-cache"] == "miss" and b"version=2" in second.content
    script.write_text("window.version = 1;")
    third = get(oven, {"piece": "edited"})
    assert third.headers["x-bundle-hash"] == first.headers["x-bundle-hash"]
    assert third.headers["x-bundle-cache"] == "hit"


# -- POST /bundle-prewarm and GET /bundle-status -----------------------------------------------


def test_prewarm_starts_bundles_in_the_background_and_status_then_lists_them(
        oven: OvenProcess) -> None:
    response = httpx.post(f"{oven.url}/bundle-prewarm",
                          json={"pieces": ["redirect-same", "../etc", "redirect-same"]},
                          timeout=30)
    assert response.status_code == 202
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["started"] == ["redirect-same"]
    assert [r["piece"] for r in body["refused"]] == ["../etc"]
    assert body["refused"][0]["error"]["code"] == "invalid"

    def listed() -> bool:
        status = httpx.get(f"{oven.url}/bundle-status", timeout=30).json()
        return "redirect-same" in {entry["piece"] for entry in status["entries"]}

    wait_until("the prewarmed bundle in /bundle-status", listed, timeout=60)
    assert httpx.post(f"{oven.url}/bundle-prewarm", json=["redirect-same"],
                      timeout=30).status_code == 202  # a bare list, as the old clients send


def test_bundle_status_describes_the_cache(oven: OvenProcess) -> None:
    get(oven, {"piece": "gallery"})
    response = httpx.get(f"{oven.url}/bundle-status", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    status = response.json()
    assert set(status) == {"entries", "count", "bytes", "max_bytes", "hits", "misses",
                           "building"}
    assert status["count"] == len(status["entries"]) >= 1
    assert status["bytes"] == sum(entry["size"] for entry in status["entries"])
    assert status["max_bytes"] == 64 * 1024 * 1024
    entry = next(e for e in status["entries"] if e["piece"] == "gallery")
    assert set(entry) == SUMMARY_KEYS - {"cached"}


# -- hostile input -----------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "status"), [
    ({}, 422),
    ({"piece": ""}, 422),
    ({"piece": "gallery", "code": "gallery"}, 422),
    ({"piece": "../etc/passwd"}, 422),
    ({"piece": "gallery/../../x"}, 422),
    ({"piece": "%2e%2e"}, 422),
    ({"piece": "a" * 5000}, 422),
    ({"piece": "Gallery"}, 422),
    ({"piece": "gal lery"}, 422),
    ({"piece": "gallery\n"}, 422),
    ({"piece": "gallery\x00"}, 422),
    ({"piece": "gallery?x=1"}, 422),
    ({"piece": "gallery#x"}, 422),
    ({"piece": "http://169.254.169.254/"}, 422),
    ({"piece": "ünï"}, 422),
    ({"code": "../x"}, 422),
    ({"code": "$$x"}, 422),
    ({"code": ""}, 422),
    ({"piece": "gallery", "format": "xml"}, 422),
    ({"piece": "gallery", "format": "HTML "}, 422),
    ({"piece": "gallery", "format": "x" * 10_000}, 422),
    ({"piece": "gallery", "nominify": "maybe"}, 422),
    ({"piece": "gallery", "nominify": "NaN"}, 422),
    ({"piece": "gallery", "nominify": "1e309"}, 422),
    ({"piece": "gallery", "nocompress": "-1"}, 422),
])
def test_hostile_query_strings_are_a_4xx_json_error(
        oven: OvenProcess, params: dict[str, str], status: int) -> None:
    assert_error(get(oven, params), status)


def test_a_piece_with_css_parse_errors_is_bundled(oven: OvenProcess) -> None:
    assert get(oven, {"piece": "bad-css"}).status_code == 200


@pytest.mark.parametrize(("piece", "code"), [
    ("redirect-private", "fetch_refused"),   # a redirect to 169.254.169.254
    ("redirect-loopback", "fetch_refused"),  # a redirect to another port on loopback
    ("redirect-loop", "fetch_refused"),
    ("many-imports", "bundle_too_large"),    # 10,000 module imports
    ("deep", "bundle_too_large"),            # an import chain 100 modules deep
    ("declared-gigabyte", "bundle_too_large"),
    ("endless-image", "bundle_too_large"),
    ("nested-script", "bundle_too_large"),   # 200,000 nested brackets
    ("nested-sheet", "bundle_too_large"),    # 600 nested parentheses
    ("not-html", "fetch_failed"),
    ("no-such-piece", "fetch_failed"),
])
def test_hostile_pieces_are_a_422_json_error_and_the_service_lives_on(
        oven: OvenProcess, piece: str, code: str) -> None:
    assert_error(get(oven, {"piece": piece}), 422, code)
    assert httpx.get(f"{oven.url}/health", timeout=10).status_code == 200


@pytest.mark.parametrize(("body", "status"), [
    (b"", 422),
    (b"{", 400),
    (b"\xff\xfe", 400),
    (b"null", 422),
    (b'"gallery"', 422),
    (b"{}", 422),
    (b'{"pieces": "gallery"}', 422),
    (b'{"pieces": []}', 422),
    (b'{"pieces": [1, 2]}', 422),
    (b'{"pieces": [null]}', 422),
    (b'{"pieces": [["gallery"]]}', 422),
    (b'{"pieces": ["gallery"], "nominify": "yes"}', 422),
    (b'{"pieces": ["gallery"], "extra": 1}', 422),
    (json.dumps({"pieces": [f"p{i}" for i in range(MAX_PREWARM + 1)]}).encode(), 413),
    (json.dumps({"pieces": ["x"] * 100_000}).encode(), 413),
])
def test_hostile_prewarm_bodies_are_a_4xx_json_error(
        oven: OvenProcess, body: bytes, status: int) -> None:
    response = httpx.post(f"{oven.url}/bundle-prewarm", content=body,
                          headers={"content-type": "application/json"}, timeout=30)
    assert_error(response, status)


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/bundle-html"), ("PUT", "/bundle-html"), ("DELETE", "/bundle-html"),
    ("GET", "/bundle-prewarm"), ("PUT", "/bundle-prewarm"),
    ("POST", "/bundle-status"), ("DELETE", "/bundle-status"),
])
def test_wrong_methods_are_a_405_json_error(oven: OvenProcess, method: str, path: str) -> None:
    assert_error(httpx.request(method, f"{oven.url}{path}", timeout=30), 405)


def test_the_routes_are_in_the_openapi_document(oven: OvenProcess) -> None:
    paths = httpx.get(f"{oven.url}/openapi.json", timeout=30).json()["paths"]
    assert {"/bundle-html", "/bundle-prewarm", "/bundle-status"} <= set(paths)


def test_a_service_stopping_while_bundles_are_made_exits_cleanly_and_soon(
        site: PieceSite, start_oven: Any) -> None:
    """A prewarm and a stream still making a bundle (its piece answers after 30 s) do not hold
    the service past its shutdown: SIGTERM ends it with 0 and nothing left running."""
    served = start_oven({"pieces": {"url_template": site.template}, "browser": {"pages": 1}})
    response = httpx.post(f"{served.url}/bundle-prewarm", json={"pieces": ["slow"]}, timeout=30)
    assert response.json()["started"] == ["slow"]
    with httpx.stream("GET", f"{served.url}/bundle-html",
                      params={"piece": "slow", "format": "stream", "nominify": "1"},
                      timeout=60) as stream:
        assert stream.status_code == 200
        wait_until("the slow file requested", lambda: site.requested("/slow/slow.js") >= 1,
                   timeout=30)
        started = time.monotonic()
        assert served.stop(timeout=30) == 0
    assert time.monotonic() - started < 20
