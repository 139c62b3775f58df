"""The old service's OG routes against a real `oven serve`: /kidlisp-og.png, its dated images,
/kidlisp-og, /kidlisp-og/status, /kidlisp-og/preview, /notepat-og.png, /kidlisp-backdrop.webp and
/kidlisp-backdrop. Small images and a short backdrop keep the renders quick."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import io
import re
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from tests.oven_process import OvenProcess, running_oven
from tests.pipeline.grab_client import metric

LAYOUTS = ["featured", "mosaic", "filmstrip", "code-split"]
OG_W, OG_H = 240, 126
ROUTES = ["/kidlisp-og.png", "/kidlisp-og", "/kidlisp-og/status", "/kidlisp-og/preview",
          "/kidlisp-og/images/mosaic-2026-01-01.png", "/notepat-og.png",
          "/kidlisp-backdrop.webp", "/kidlisp-backdrop"]
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
IMG = {"Accept": "image/avif,image/webp,image/apng,image/*,*/*;q=0.8"}


def og_config(**og: object) -> dict[str, dict[str, object]]:
    compat_og: dict[str, object] = {
        "kidlisp_pieces": ["still", "anim"], "notepat_pieces": ["still"],
        "backdrop_pieces": ["anim"], "backdrop_size": 48, "backdrop_density": 2.0,
        "backdrop_frames": 4, "backdrop_fps": 8.0}
    compat_og.update(og)
    return {"showcase": {"og_width": OG_W, "og_height": OG_H, "og_wait_timeout_s": 150.0},
            "compat.og": compat_og}


@pytest.fixture(scope="module")
def oven(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvenProcess]:
    with running_oven(tmp_path_factory.mktemp("compat-og"), og_config()) as served:
        yield served


def _today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def _png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.convert("RGB")


def _error(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error: dict[str, str] = response.json()["error"]
    assert error["code"] and error["message"]
    return error


@pytest.mark.parametrize("layout", LAYOUTS)
def test_kidlisp_og_png_redirects_to_todays_stored_image_of_each_layout(
        oven: OvenProcess, layout: str) -> None:
    first = httpx.get(f"{oven.url}/kidlisp-og.png?layout={layout}", timeout=200)
    # Nothing was stored: this request waited for the render, then was redirected to it.
    assert first.status_code == 301, first.text
    location = first.headers["location"]
    assert location == f"/kidlisp-og/images/{layout}-{_today()}.png"
    assert first.headers["x-oven-og-freshness"] == "waited"
    max_age = int(re.fullmatch(r"public, max-age=(\d+)", first.headers["cache-control"])[1])
    assert 0 < max_age <= 3600
    image = httpx.get(oven.url + location, timeout=10)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.headers["cache-control"] == "public, max-age=86400, immutable"
    assert _png(image.content).size == (OG_W, OG_H)
    again = httpx.get(f"{oven.url}/kidlisp-og.png?layout={layout}", timeout=10)
    assert again.status_code == 301
    assert again.headers["location"] == location
    assert again.headers["x-cache"] == "HIT"
    assert metric(oven, "oven_og_renders_total",
                  {"layout": f"kidlisp:{layout}", "outcome": "ok"}) == 1


def test_kidlisp_og_png_without_a_layout_is_the_mosaic_as_the_old_service_had_it(
        oven: OvenProcess) -> None:
    response = httpx.get(f"{oven.url}/kidlisp-og.png", timeout=200)
    assert response.status_code == 301
    assert response.headers["location"] == f"/kidlisp-og/images/mosaic-{_today()}.png"
    empty = httpx.get(f"{oven.url}/kidlisp-og.png?layout=", timeout=200)
    assert empty.headers["location"] == response.headers["location"]


@pytest.mark.parametrize("route", ["/kidlisp-og.png", "/kidlisp-og"])
@pytest.mark.parametrize("layout", ["collage", "MOSAIC", "../../etc/passwd", "mosaic%00",
                                    "NaN", "%F0%9F%92%A9", "x" * 8000, "mosaic%20"])
def test_an_unknown_layout_is_a_400_naming_the_four_layouts(
        oven: OvenProcess, route: str, layout: str) -> None:
    response = httpx.get(f"{oven.url}{route}?layout={layout}", headers=HTML, timeout=10)
    error = _error(response, 400)
    assert error["code"] == "unknown_layout"
    assert "featured, mosaic, filmstrip, code-split" in error["message"]
    assert response.json()["error"]["layouts"] == LAYOUTS
    assert len(response.content) < 1000  # the layout given is not echoed whole


@pytest.mark.parametrize("name", [
    "collage-2026-01-01.png", "mosaic-2026-13-45.png", "mosaic-2026-01-01.webp", "mosaic.png",
    "-2026-01-01.png", "mosaic_2026-01-01.png", "..%2F..%2Fsecret-2026-01-01.png",
    "%2E%2E-2026-01-01.png", "mosaic-+2026-01-1.png", "mosaic-2026-01-01.png.png"])
def test_a_dated_image_name_that_is_not_a_layout_and_a_day_is_a_404(
        oven: OvenProcess, name: str) -> None:
    response = httpx.get(f"{oven.url}/kidlisp-og/images/{name}", timeout=10)
    assert _error(response, 404)["code"] in ("unknown_image", "not_found")


def test_a_dated_image_no_longer_kept_answers_the_latest_image_not_a_redirect(
        oven: OvenProcess) -> None:
    # A client may hold a cached 301 to a day that has since been pruned: redirecting it
    # back to /kidlisp-og.png would send it round in circles.
    response = httpx.get(f"{oven.url}/kidlisp-og/images/mosaic-2001-01-01.png", timeout=200)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-oven-og-date"] == _today()
    assert response.headers["cache-control"] == "public, max-age=300"
    assert _png(response.content).size == (OG_W, OG_H)


def test_kidlisp_og_is_a_page_with_og_tags_for_a_browser_and_the_image_for_an_img_tag(
        oven: OvenProcess) -> None:
    page = httpx.get(f"{oven.url}/kidlisp-og?layout=code-split", headers=HTML, timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["vary"] == "Accept"
    assert f'<meta property="og:image" content="{oven.url}/kidlisp-og.png?layout=code-split">' \
        in page.text
    assert '<meta property="og:image:width" content="240">' in page.text
    assert 'name="twitter:card" content="summary_large_image"' in page.text
    default = httpx.get(f"{oven.url}/kidlisp-og", headers=HTML, timeout=10)
    assert "/kidlisp-og.png?layout=featured" in default.text  # the old page's default
    image = httpx.get(f"{oven.url}/kidlisp-og?layout=code-split", headers=IMG, timeout=200)
    assert image.status_code == 302
    assert image.headers["location"] == f"/kidlisp-og/images/code-split-{_today()}.png"
    assert image.headers["vary"] == "Accept"


def test_kidlisp_og_escapes_a_hostile_host_header_in_its_page(oven: OvenProcess) -> None:
    page = httpx.get(f"{oven.url}/kidlisp-og", timeout=10,
                     headers={**HTML, "Host": 'evil.example"><script>alert(1)</script>'})
    if page.status_code == 400:  # the server refused the Host header itself: also safe
        return
    assert page.status_code == 200
    assert "<script>" not in page.text


def test_kidlisp_og_status_describes_the_cache_per_layout(oven: OvenProcess) -> None:
    httpx.get(f"{oven.url}/kidlisp-og.png?layout=mosaic", timeout=200)
    response = httpx.get(f"{oven.url}/kidlisp-og/status", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["availableLayouts"] == LAYOUTS
    assert body["cached"] is True
    assert body["url"] == f"/kidlisp-og/images/mosaic-{_today()}.png"
    assert dt.datetime.fromisoformat(body["expires"]) > dt.datetime.now(dt.UTC)
    assert dt.datetime.fromisoformat(body["generatedAt"])
    assert body["featuredPiece"]["code"] in ("still", "anim")
    assert set(body["usage"]) >= {"recommended", "withLayout"}
    assert set(body["layouts"]) == set(LAYOUTS)
    mosaic = body["layouts"]["mosaic"]
    assert mosaic["fresh"] is True and mosaic["date"] == _today()
    assert mosaic["pieces"] == ["still", "anim"]
    assert len(body["layouts"]["featured"]["pieces"]) == 1


def test_kidlisp_og_preview_is_a_page_of_every_layout(oven: OvenProcess) -> None:
    response = httpx.get(f"{oven.url}/kidlisp-og/preview", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    for layout in LAYOUTS:
        assert f'<img src="/kidlisp-og.png?layout={layout}"' in response.text
    assert '<img src="/notepat-og.png"' in response.text
    assert '<img src="/kidlisp-backdrop.webp"' in response.text


def test_a_crawler_storm_on_the_uncached_notepat_image_renders_it_once_and_gets_the_bytes(
        oven: OvenProcess) -> None:
    url = f"{oven.url}/notepat-og.png"
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: httpx.get(url, timeout=200), range(8)))
    for answer in answers:
        # Bytes, not a redirect: some crawlers follow none for og:image.
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "image/png"
        assert answer.headers["x-oven-og-date"] == _today()
    assert len({a.content for a in answers}) == 1
    assert _png(answers[0].content).size == (OG_W, OG_H)
    assert metric(oven, "oven_og_renders_total",
                  {"layout": "notepat:featured", "outcome": "ok"}) == 1
    again = httpx.get(url, timeout=10)
    assert again.headers["x-cache"] == "HIT"
    assert again.headers["cache-control"] == "public, max-age=604800"
    assert again.content == answers[0].content


def test_a_storm_on_the_backdrop_is_one_animated_webp_grab(oven: OvenProcess) -> None:
    url = f"{oven.url}/kidlisp-backdrop.webp"
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: httpx.get(url, timeout=200), range(6)))
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "image/webp"
        assert answer.headers["x-backdrop-piece"] == "anim"
        assert answer.headers["cache-control"] == "public, max-age=3600"
    assert len({a.content for a in answers}) == 1
    with Image.open(io.BytesIO(answers[0].content)) as webp:
        assert webp.format == "WEBP"
        assert webp.size == (96, 96)  # 48 CSS px at density 2
        assert getattr(webp, "n_frames", 1) == 4
    assert metric(oven, "oven_grabs_total", {"format": "webp"}) == 1
    again = httpx.get(url, timeout=30)
    assert again.headers["x-cache"] == "HIT"


def test_kidlisp_backdrop_is_a_page_for_a_browser_and_a_redirect_otherwise(
        oven: OvenProcess) -> None:
    page = httpx.get(f"{oven.url}/kidlisp-backdrop", headers=HTML, timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert f'<meta property="og:image" content="{oven.url}/kidlisp-backdrop.webp">' in page.text
    other = httpx.get(f"{oven.url}/kidlisp-backdrop", headers=IMG, timeout=10)
    assert other.status_code == 302
    assert other.headers["location"] == "/kidlisp-backdrop.webp"
    assert other.headers["x-backdrop-piece"] == "anim"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_the_og_routes_answer_other_methods_with_a_405_json_error(
        oven: OvenProcess, method: str) -> None:
    for route in ROUTES:
        response = httpx.request(method, oven.url + route, timeout=10)
        assert _error(response, 405)["code"] == "method_not_allowed", route
