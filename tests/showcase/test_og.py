"""OG images: 1200x630 compositions of piece stills, cached per UTC day, served stale-while-
revalidate so a crawler never waits on a browser once any image exists."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import io
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.oven_process import OvenProcess
from tests.pipeline.grab_client import metric
from tests.waiting import wait_until

from .conftest import start_showcase_oven

DISTINCT = (255, 0, 255)  # magenta: no bundled piece paints it


def _png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.convert("RGB")


@pytest.mark.parametrize("layout", ["mosaic", "filmstrip"])
def test_an_og_layout_is_a_1200x630_png_rendered_once_and_then_served_from_the_day_cache(
        showcase_oven: OvenProcess, layout: str) -> None:
    first = httpx.get(f"{showcase_oven.url}/og/{layout}.png", timeout=180)
    assert first.status_code == 200, first.text
    assert _png(first.content).size == (1200, 630)
    # No image existed, so this request waited (bounded) for the render.
    assert first.headers["x-oven-og-freshness"] == "waited"
    assert first.headers["x-oven-og-date"] == dt.datetime.now(dt.UTC).date().isoformat()
    # Served from the day cache, not rendered again: the freshness header and the render
    # count below say so (no wall-clock bound, which a loaded machine would make luck).
    second = httpx.get(f"{showcase_oven.url}/og/{layout}.png", timeout=10)
    assert second.headers["x-oven-og-freshness"] == "fresh"
    assert second.content == first.content
    assert "stale-while-revalidate=" in second.headers["cache-control"]
    assert metric(showcase_oven, "oven_og_renders_total",
                  {"layout": layout, "outcome": "ok"}) == 1


def test_an_unknown_og_layout_answers_404_json(showcase_oven: OvenProcess) -> None:
    response = httpx.get(f"{showcase_oven.url}/og/collage.png", timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_layout"


def test_yesterdays_og_image_is_answered_at_once_while_todays_renders_once(
        tmp_path: Path) -> None:
    today = dt.datetime.now(dt.UTC).date()
    yesterday = today - dt.timedelta(days=1)
    cache = tmp_path / "data" / "og"
    cache.mkdir(parents=True)
    Image.new("RGB", (1200, 630), DISTINCT).save(cache / f"mosaic-{yesterday}.png")
    oven = start_showcase_oven(tmp_path)
    try:
        url = f"{oven.url}/og/mosaic.png"
        started = time.monotonic()
        stale = httpx.get(url, timeout=10)
        answered_in = time.monotonic() - started
        assert stale.status_code == 200, stale.text
        assert answered_in < 2, f"a crawler waited {answered_in:.1f} s with an image on disk"
        assert stale.headers["x-oven-og-date"] == yesterday.isoformat()
        assert stale.headers["x-oven-og-freshness"] == "stale"
        assert stale.headers["cache-control"] == \
            "public, max-age=60, stale-while-revalidate=86400"
        assert _png(stale.content).getpixel((600, 315)) == DISTINCT
        # More crawlers while it renders: each answered at once, and no second render starts.
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            during = list(pool.map(lambda _: httpx.get(url, timeout=10), range(4)))
        assert not (cache / f"mosaic-{today}.png").exists(), \
            "the render ended before the crawlers were answered: they did not overlap"
        assert {r.headers["x-oven-og-date"] for r in during} == {yesterday.isoformat()}

        def fresh() -> httpx.Response | None:
            response = httpx.get(url, timeout=10)
            return response if response.headers["x-oven-og-date"] == today.isoformat() else None

        new = wait_until("today's mosaic", fresh, timeout=180, interval=0.5)
        assert new.headers["x-oven-og-freshness"] == "fresh"
        image = _png(new.content)
        assert image.size == (1200, 630)
        assert image.getpixel((600, 315)) != DISTINCT
        assert metric(oven, "oven_og_renders_total", {"layout": "mosaic", "outcome": "ok"}) == 1
        assert metric(oven, "oven_og_served_total",
                      {"layout": "mosaic", "freshness": "stale"}) >= 5
        assert sorted(p.name for p in cache.glob("*.png")) == [f"mosaic-{today}.png"]
    finally:
        code = oven.stop()  # asserts that no Chromium or ffmpeg is left behind
    assert code == 0, oven.log[-3000:]
