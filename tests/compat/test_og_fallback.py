"""The old OG routes when today's image is not there yet or cannot be made: yesterday's image at
once (one render for a storm of crawlers), and 503 with Retry-After when nothing can be shown."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import io
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.oven_process import StartOven
from tests.pipeline.grab_client import metric
from tests.waiting import wait_until

from .test_og import OG_H, OG_W, og_config

DISTINCT = (255, 0, 255)  # magenta: no bundled piece paints it


def test_yesterdays_kidlisp_image_is_the_instant_fallback_while_todays_renders_once(
        start_oven: StartOven, tmp_path: Path) -> None:
    today = dt.datetime.now(dt.UTC).date()
    yesterday = today - dt.timedelta(days=1)
    workdir = tmp_path / "oven"
    cache = workdir / "data" / "og" / "kidlisp"
    cache.mkdir(parents=True)
    Image.new("RGB", (OG_W, OG_H), DISTINCT).save(cache / f"mosaic-{yesterday}.png")
    oven = start_oven(og_config(), workdir=workdir)
    url = f"{oven.url}/kidlisp-og.png?layout=mosaic"

    started = time.monotonic()
    stale = httpx.get(url, timeout=10)
    answered_in = time.monotonic() - started
    assert stale.status_code == 302, stale.text
    assert answered_in < 2, f"a crawler waited {answered_in:.1f} s with an image on disk"
    assert stale.headers["location"] == f"/kidlisp-og/images/mosaic-{yesterday}.png"
    assert stale.headers["cache-control"] == "public, max-age=300"
    assert stale.headers["x-oven-og-freshness"] == "stale"
    # More crawlers while it renders: each sent to yesterday's at once, no second render.
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        during = list(pool.map(lambda _: httpx.get(url, timeout=10), range(6)))
    assert not (cache / f"mosaic-{today}.png").exists(), \
        "the render ended before the crawlers were answered: they did not overlap"
    assert {r.headers["location"] for r in during} == {stale.headers["location"]}
    old = httpx.get(oven.url + stale.headers["location"], timeout=10)
    assert old.status_code == 200
    assert old.headers["x-oven-og-freshness"] == "stale"
    assert old.headers["x-cache"] == "STALE"
    image = Image.open(io.BytesIO(old.content)).convert("RGB")
    assert image.getpixel((OG_W // 2, OG_H // 2)) == DISTINCT

    def fresh() -> httpx.Response | None:
        response = httpx.get(url, timeout=10)
        return response if response.status_code == 301 else None

    new = wait_until("today's mosaic", fresh, timeout=200, interval=0.5)
    assert new.headers["location"] == f"/kidlisp-og/images/mosaic-{today}.png"
    assert metric(oven, "oven_og_renders_total",
                  {"layout": "kidlisp:mosaic", "outcome": "ok"}) == 1
    # Yesterday's file is pruned; its URL now answers today's image rather than a redirect.
    gone = httpx.get(oven.url + stale.headers["location"], timeout=10)
    assert gone.status_code == 200
    assert gone.headers["x-oven-og-date"] == today.isoformat()
    assert Image.open(io.BytesIO(gone.content)).convert("RGB").getpixel(
        (OG_W // 2, OG_H // 2)) != DISTINCT


@pytest.fixture
def failing(start_oven: StartOven) -> str:
    """An oven whose every OG image and backdrop is of a piece that throws at load."""
    config = og_config(kidlisp_pieces=["throws"], notepat_pieces=["throws"],
                       backdrop_pieces=["throws"])
    return start_oven(config).url


@pytest.mark.parametrize("route", ["/kidlisp-og.png?layout=featured", "/notepat-og.png",
                                   "/kidlisp-og?layout=mosaic", "/kidlisp-backdrop.webp"])
def test_an_image_that_cannot_be_rendered_is_a_503_with_retry_after(
        failing: str, route: str) -> None:
    response = httpx.get(failing + route, timeout=200)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "render_failed"
    assert int(response.headers["retry-after"]) >= 1
    # The next request within the retry time is refused at once, not rendered again.
    started = time.monotonic()
    again = httpx.get(failing + route, timeout=200)
    assert again.status_code == 503
    assert "retry-after" in again.headers
    if "backdrop" not in route:  # a grab's failure is the queue's to cache, not the renderer's
        assert time.monotonic() - started < 2


def test_a_backdrop_past_the_limits_is_a_503_naming_the_settings(
        start_oven: StartOven) -> None:
    oven = start_oven(og_config(backdrop_frames=1000))
    response = httpx.get(f"{oven.url}/kidlisp-backdrop.webp", timeout=30)
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "misconfigured"
    assert "[compat.og]" in error["message"] and "[limits]" in error["message"]
    assert "retry-after" in response.headers
