"""App-store screenshots: one preset as a PNG, every preset as a streamed ZIP, clear 404s."""

from __future__ import annotations

import io
import zipfile

import httpx
import pytest
from PIL import Image

from oven.grabs import LimitsSettings
from oven.showcase import ShowcaseSettings
from tests.oven_process import OvenProcess
from tests.pipeline.grab_client import metric

from .conftest import SMALL_PRESETS


def _png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as png:
        assert png.format == "PNG"
        return png.size


def test_the_default_presets_are_the_six_app_store_sizes_within_the_default_limits() -> None:
    presets = ShowcaseSettings().presets
    assert {name: (p.width, p.height) for name, p in presets.items()} == {
        "phone-portrait": (1080, 1920), "phone-landscape": (1920, 1080),
        "tablet7-portrait": (1200, 1920), "tablet7-landscape": (1920, 1200),
        "tablet10-portrait": (1600, 2560), "tablet10-landscape": (2560, 1600),
    }
    # Captured at density, so the viewport stays inside [limits] although 2560 > 1920.
    limits = LimitsSettings()
    for preset in presets.values():
        css_width, css_height = preset.css_size
        assert css_width * preset.density == preset.width
        assert css_width <= limits.max_width and css_height <= limits.max_height
        assert preset.density <= limits.max_density


def test_a_preset_screenshot_is_a_png_of_the_preset_pixel_size(
        showcase_oven: OvenProcess) -> None:
    response = httpx.get(f"{showcase_oven.url}/app-screenshots/small-landscape/still.png",
                         timeout=120)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert _png_size(response.content) == (320, 180)  # 160x90 CSS px at density 2


def test_the_presets_zip_streams_one_png_per_preset_at_its_size(
        showcase_oven: OvenProcess) -> None:
    hits_before = metric(showcase_oven, "oven_cache_total", {"outcome": "hit"})
    with httpx.stream("GET", f"{showcase_oven.url}/app-screenshots/anim.zip",
                      timeout=180) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"] == "application/zip"
        # Streamed as members are ready: no length known up front.
        assert "content-length" not in response.headers
        assert response.headers.get("transfer-encoding") == "chunked"
        body = response.read()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.testzip() is None
        sizes = {info.filename: _png_size(archive.read(info)) for info in archive.infolist()}
    assert sizes == {f"anim-{name}.png": (p["width"], p["height"])
                     for name, p in SMALL_PRESETS.items()}
    # The captures went through the result cache: asking again is all hits, no browser.
    again = httpx.get(f"{showcase_oven.url}/app-screenshots/anim.zip", timeout=60)
    assert again.status_code == 200
    hits = metric(showcase_oven, "oven_cache_total", {"outcome": "hit"}) - hits_before
    assert hits == len(SMALL_PRESETS)


@pytest.mark.parametrize(("path", "code"), [
    ("/app-screenshots/no-such-preset/still.png", "unknown_preset"),
    ("/app-screenshots/small-portrait/no-such-piece.png", "unknown_piece"),
    ("/app-screenshots/no-such-piece.zip", "unknown_piece"),
    ("/app-screenshots/small-portrait/still.gif", "not_found"),
])
def test_an_unknown_preset_or_piece_answers_404_json_and_starts_nothing(
        showcase_oven: OvenProcess, path: str, code: str) -> None:
    admitted = metric(showcase_oven, "oven_cache_total", {"outcome": "miss"})
    response = httpx.get(f"{showcase_oven.url}{path}", timeout=30)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == code
    assert metric(showcase_oven, "oven_cache_total", {"outcome": "miss"}) == admitted


def test_the_showcase_routes_are_in_the_openapi_document(showcase_oven: OvenProcess) -> None:
    paths = httpx.get(f"{showcase_oven.url}/openapi.json", timeout=10).json()["paths"]
    for path in ("/app-screenshots/{preset}/{name}", "/app-screenshots/{name}", "/og/{name}"):
        assert "get" in paths[path], sorted(paths)



def test_a_zip_of_a_piece_that_fails_answers_a_json_error_before_any_zip_byte(
        showcase_oven: OvenProcess) -> None:
    response = httpx.get(f"{showcase_oven.url}/app-screenshots/throws.zip", timeout=120)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "failed"
    assert "throws" in error["message"] and "small-" in error["message"]
