"""The old icon and preview routes against a real `oven serve`: /icon/{W}x{H}/{piece}.png and
.webp (animated), /preview/{W}x{H}/{piece}.png; oven's own /icon/{size}/ keeps answering."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.oven_process import OvenProcess, running_oven


@pytest.fixture(scope="module")
def oven(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvenProcess]:
    config: dict[str, dict[str, Any]] = {
        "browser": {"pages": 2},
        "edge": {"rate_limit_per_s": 10_000, "rate_limit_burst": 100_000},
    }
    with running_oven(tmp_path_factory.mktemp("compat-icons"), config) as oven:
        yield oven


def get(oven: OvenProcess, path: str, *, timeout: float = 90) -> httpx.Response:
    return httpx.get(f"{oven.url}{path}", timeout=timeout)


def test_a_png_icon_is_a_still_of_width_by_height_and_then_a_cache_hit(
        oven: OvenProcess) -> None:
    first = get(oven, "/icon/96x48/still.png")
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/png"
    assert first.headers["cache-control"] == "public, max-age=3600"
    assert first.headers["x-cache"] == "MISS"
    with Image.open(io.BytesIO(first.content)) as png:
        assert (png.format, png.size) == ("PNG", (96, 48))
    hit = get(oven, "/icon/96x48/still.png")
    assert hit.status_code == 200 and hit.headers["x-cache"] == "HIT"
    assert hit.headers["cache-control"] == "public, max-age=86400"
    assert hit.content == first.content


def test_a_webp_icon_is_animated_with_the_old_defaults(oven: OvenProcess) -> None:
    response = get(oven, "/icon/64x64/anim.webp")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/webp"
    assert response.headers["cache-control"] == "public, max-age=86400"
    with Image.open(io.BytesIO(response.content)) as webp:
        assert (webp.format, webp.size, webp.n_frames) == ("WEBP", (64, 64), 30)


def test_a_webp_icon_takes_frames_and_fps(oven: OvenProcess) -> None:
    response = get(oven, "/icon/128x128/anim.webp?frames=6&fps=12")
    assert response.status_code == 200, response.text
    with Image.open(io.BytesIO(response.content)) as webp:
        assert (webp.size, webp.n_frames) == ((128, 128), 6)


def test_a_preview_is_a_png_of_width_by_height(oven: OvenProcess) -> None:
    response = get(oven, "/preview/320x180/still.png")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(response.content)) as png:
        assert png.size == (320, 180)


def test_ovens_own_square_icon_route_keeps_answering(oven: OvenProcess) -> None:
    response = get(oven, "/icon/72/still.png")
    assert response.status_code == 200, response.text
    with Image.open(io.BytesIO(response.content)) as png:
        assert png.size == (72, 72)


@pytest.mark.parametrize("path, size, frames", [
    ("/icon/513x600/still.png", (512, 512), 1), ("/icon/99999x1/still.png", (512, 1), 1),
    ("/icon/256x64/anim.webp?frames=61&fps=31", (128, 64), 60),
    ("/preview/1921x1200/still.png", (1920, 1080), 1),
])
def test_an_oversize_icon_or_preview_is_cut_down_as_the_old_route_did(
        oven: OvenProcess, path: str, size: tuple[int, int], frames: int) -> None:
    # Old pages ask for sizes past the largest (an <img> of a 256 px animated icon): they get
    # the largest, not a broken image.
    response = get(oven, path)
    assert response.status_code == 200, response.text
    with Image.open(io.BytesIO(response.content)) as image:
        assert (image.size, getattr(image, "n_frames", 1)) == (size, frames)


@pytest.mark.parametrize("path, status, named", [
    ("/icon/0x64/still.png", 422, "width"), ("/icon/64x0/anim.webp", 422, "height"),
    ("/icon/64x64/anim.webp?frames=0", 422, "frames"),
    ("/icon/64x64/anim.webp?frames=abc", 422, "frames"),
    ("/icon/64x64/anim.webp?frames=1e2", 422, "frames"),
    ("/icon/64x64/anim.webp?fps=0", 422, "fps"), ("/icon/64x64/anim.webp?fps=nan", 422, "fps"),
    ("/icon/64x64/anim.webp?fps=-1", 422, "fps"),
    ("/icon/64x64/still.svg", 404, "still.svg"), ("/icon/64x64/still", 404, "piece"),
    ("/icon/64x64/%2e%2e.png", 422, "piece"), ("/icon/64x64/still%00.png", 422, "piece"),
    ("/icon/64x64/%7Bpiece%7D.png", 422, "piece"), ("/icon/64x64/no-such.png", 404, "no-such"),
    ("/icon/64x64/$roz.png", 422, "[pieces] code_template"),
    ("/icon/123456x1/still.png", 404, "/icon/"), ("/icon/64x64x64/still.png", 404, "/icon/"),
    ("/preview/0x0/still.png", 422, "width"),
    ("/preview/64x64/still.webp", 404, "still.webp"),
    ("/preview/64x64/%2e%2e.png", 422, "piece"), ("/preview/640x-1/still.png", 404, "WIDTHx"),
])
def test_hostile_icon_and_preview_requests_are_4xx_json(oven: OvenProcess, path: str,
                                                        status: int, named: str) -> None:
    response = get(oven, path, timeout=30)
    assert response.status_code == status, response.text
    assert named in response.json()["error"]["message"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_icons_and_previews_answer_only_get(oven: OvenProcess, method: str) -> None:
    for path in ("/icon/64x64/still.png", "/preview/64x64/still.png"):
        response = httpx.request(method, f"{oven.url}{path}", timeout=30)
        assert response.status_code == 405, response.text
        assert response.json()["error"]["code"] == "method_not_allowed"


def test_nothing_failed_inside_the_service(oven: OvenProcess) -> None:
    assert "unhandled error" not in oven.log and "Traceback" not in oven.log
