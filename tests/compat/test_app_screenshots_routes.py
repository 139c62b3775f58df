"""The old service's app-screenshot routes on a real `oven serve`: the page of presets, one
preset with ?force=true (bounded: once per interval unless admin), the ZIP with a folder per
category, the JSON metadata, and hostile forms of each a 4xx JSON error that captures nothing."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.oven_process import OvenProcess, running_oven
from tests.pipeline.grab_client import metric
from tests.showcase.conftest import SMALL_PRESETS, showcase_config

ADMIN_TOKEN = "compat-shots-admin-token"
FORCE_INTERVAL_S = 600.0
# One preset with a configured category; the others take theirs from their names ("small").
WATCH = {"width": 96, "height": 96, "density": 1, "category": "wearable"}
PRESETS = {**SMALL_PRESETS, "watch-face": WATCH}


@pytest.fixture(scope="module")
def oven(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvenProcess]:
    config = showcase_config()
    config["showcase.presets.watch-face"] = dict(WATCH)
    config["server"] = {"admin_token": ADMIN_TOKEN}
    config["compat.app_screenshots"] = {"force_interval_s": FORCE_INTERVAL_S}
    # Many requests from one client on purpose: the rate limit has its own tests.
    config["edge"] = {"rate_limit_per_s": 10_000, "rate_limit_burst": 100_000}
    with running_oven(tmp_path_factory.mktemp("compat-shots-oven"), config) as oven:
        yield oven


def get(oven: OvenProcess, path: str, **kw: Any) -> httpx.Response:
    return httpx.get(f"{oven.url}{path}", timeout=180, **kw)


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as png:
        assert png.format == "PNG"
        return png.size


def misses(oven: OvenProcess) -> float:
    """Captures admitted so far (every cache miss is one)."""
    return metric(oven, "oven_cache_total", {"outcome": "miss"})


def test_the_page_lists_every_preset_with_its_image_and_a_regenerate_link(
        oven: OvenProcess) -> None:
    before = misses(oven)
    response = get(oven, "/app-screenshots?piece=anim")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = response.text
    for name in PRESETS:
        assert f'src="/app-screenshots/{name}/anim.png"' in page
        assert f'href="/app-screenshots/{name}/anim.png?force=true"' in page
    assert 'href="/app-screenshots/download/anim"' in page
    assert 'href="/api/app-screenshots/anim"' in page
    assert misses(oven) == before  # the page itself captures nothing; its images do


def test_the_page_without_a_piece_is_a_form_asking_for_one(oven: OvenProcess) -> None:
    for path in ("/app-screenshots", "/app-screenshots?piece="):
        response = get(oven, path)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert '<form method="get" action="/app-screenshots">' in response.text
        assert "<img" not in response.text


def test_one_preset_answers_its_png_with_the_old_services_headers(oven: OvenProcess) -> None:
    first = get(oven, "/app-screenshots/small-landscape/still.png")
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/png"
    assert png_size(first.content) == (320, 180)
    assert first.headers["x-screenshot-preset"] == "small-landscape"
    assert first.headers["x-screenshot-dimensions"] == "320x180"
    assert first.headers["x-cache"] in ("MISS", "HIT")
    again = get(oven, "/app-screenshots/small-landscape/still.png?download=true")
    assert again.status_code == 200
    assert again.headers["x-cache"] == "HIT"
    assert again.content == first.content
    assert again.headers["content-disposition"] == \
        'attachment; filename="still-small-landscape.png"'


def test_force_captures_again_once_per_interval_and_the_admin_token_is_exempt(
        oven: OvenProcess) -> None:
    path = "/app-screenshots/small-portrait/clock.png"
    assert get(oven, path).status_code == 200
    assert get(oven, path).headers["x-cache"] == "HIT"
    before = misses(oven)
    forced = get(oven, f"{path}?force=true")
    assert forced.status_code == 200, forced.text
    assert forced.headers["x-cache"] == "REGENERATED"
    assert forced.headers["cache-control"] == "no-store, no-cache, must-revalidate"
    assert png_size(forced.content) == (90, 160)
    assert misses(oven) == before + 1  # a real capture, not the cached file
    # Again within [compat.app_screenshots] force_interval_s: refused, nothing captured.
    soon = get(oven, f"{path}?force=true")
    assert soon.status_code == 429, soon.text
    assert soon.json()["error"]["code"] == "too_soon"
    assert "force_interval_s" in soon.json()["error"]["message"]
    assert 0 < int(soon.headers["retry-after"]) <= FORCE_INTERVAL_S
    assert misses(oven) == before + 1
    # The operator may always force.
    admin = get(oven, f"{path}?force=true", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert admin.status_code == 200, admin.text
    assert admin.headers["x-cache"] == "REGENERATED"
    assert misses(oven) == before + 2
    # Another preset of the same piece has its own interval; anything but true is no force.
    other = get(oven, "/app-screenshots/small-landscape/clock.png?force=true")
    assert other.status_code == 200
    assert other.headers["x-cache"] == "REGENERATED"
    for value in ("false", "NaN", "", "TRUE!"):
        plain = get(oven, f"{path}?force={value}")
        assert plain.status_code == 200, (value, plain.text)
        assert plain.headers["x-cache"] == "HIT", value


def test_the_download_is_a_zip_with_a_folder_per_category(oven: OvenProcess) -> None:
    with httpx.stream("GET", f"{oven.url}/app-screenshots/download/anim",
                      timeout=180) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"] == "application/zip"
        assert response.headers["content-disposition"] == \
            'attachment; filename="anim-app-screenshots.zip"'
        body = response.read()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.testzip() is None
        sizes = {info.filename: png_size(archive.read(info)) for info in archive.infolist()}
    assert sizes == {
        "small/anim-small-portrait.png": (90, 160),
        "small/anim-small-landscape.png": (320, 180),
        "wearable/anim-watch-face.png": (96, 96),
    }


def test_the_json_says_each_presets_size_category_url_and_whether_it_is_cached(
        oven: OvenProcess) -> None:
    before = misses(oven)
    response = get(oven, "/api/app-screenshots/throws")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert misses(oven) == before  # asking captures nothing
    assert data["piece"] == "throws"
    assert data["zipUrl"] == "/app-screenshots/download/throws"
    assert data["dashboardUrl"] == "/app-screenshots?piece=throws"
    assert set(data["presets"]) == set(PRESETS)
    watch = data["presets"]["watch-face"]
    assert watch == {"width": 96, "height": 96, "density": 1, "label": "Watch Face",
                     "category": "wearable", "cached": False,
                     "url": "/app-screenshots/watch-face/throws.png",
                     "downloadUrl": "/app-screenshots/watch-face/throws.png?download=true"}
    assert data["presets"]["small-portrait"]["category"] == "small"
    assert get(oven, "/app-screenshots/small-landscape/still.png").status_code == 200
    cached = get(oven, "/api/app-screenshots/still").json()["presets"]
    assert cached["small-landscape"]["cached"] is True


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/app-screenshots?piece=%3Cscript%3Ealert(1)%3C/script%3E", 422, "invalid"),
    ("/app-screenshots?piece=../../etc/passwd", 422, "invalid"),
    ("/app-screenshots?piece=no-such-piece", 404, "unknown_piece"),
    ("/app-screenshots?piece=" + "a" * 5000, 422, "invalid"),
    ("/app-screenshots/download/no-such-piece", 404, "unknown_piece"),
    # %2F reaches the app decoded: a path of more segments, which no route matches.
    ("/app-screenshots/download/..%2F..%2Fetc", 404, "not_found"),
    ("/app-screenshots/download/.hidden", 422, "invalid"),
    ("/app-screenshots/download/%24", 422, "invalid"),
    ("/app-screenshots/download/anim%0Ax", 422, "invalid"),
    ("/api/app-screenshots/%00", 422, "invalid"),
    ("/api/app-screenshots/" + "b" * 5000, 422, "invalid"),
    ("/api/app-screenshots/no-such-piece", 404, "unknown_piece"),
    ("/app-screenshots/no-such-preset/anim.png?force=true", 404, "unknown_preset"),
    ("/app-screenshots/small-portrait/no-such-piece.png?force=true", 404, "unknown_piece"),
    ("/app-screenshots/small-portrait/anim.gif?force=true", 404, "not_found"),
])
def test_hostile_app_screenshot_requests_are_4xx_json_and_capture_nothing(
        oven: OvenProcess, path: str, status: int, code: str) -> None:
    before = misses(oven)
    response = get(oven, path)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == code
    assert "<script>" not in response.text
    assert misses(oven) == before


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/app-screenshots"),
    ("DELETE", "/app-screenshots/download/anim"),
    ("PUT", "/api/app-screenshots/anim"),
])
def test_wrong_methods_on_the_app_screenshot_routes_are_405_json(
        oven: OvenProcess, method: str, path: str) -> None:
    response = httpx.request(method, f"{oven.url}{path}", timeout=30)
    assert response.status_code == 405, response.text
    assert response.json()["error"]["code"] == "method_not_allowed"
