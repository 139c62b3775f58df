"""The key property of a bundle: fetched from a real `oven serve` (GET /bundle-html), written to
disk and opened in real Chromium with every network request aborted, it renders the same first
frame as the live piece, pixel for pixel.

`gallery` (tests/bundles/pieces) loads what a bundle must carry: ES modules through the page's
own import map (a bare name and a prefix), a cycle, a module shared by a module and an inline
module script (one instance, or it never gets ready), a literal dynamic import(), a classic and
a deferred script (run in their order), a style sheet that @imports another with an
@font-face, images by src, srcset, CSS and a style attribute. oven's own pieces are single
files; animated ones are compared on a paused virtual clock.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser

from tests.bundles.offline import differing_pixels, open_bundle, render
from tests.bundles.site import PieceSite
from tests.oven_process import OvenProcess, running_oven

OTHER_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf")
GALLERY_STATE = {"order": ["classic:no-body", "deferred:canvas", "main"],
                 "marks": ["inline", "main"]}


@pytest.fixture(scope="module")
def site_oven(site: PieceSite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvenProcess]:
    """Pieces by name from the test site (a template as production points at its own host)."""
    config: dict[str, dict[str, object]] = {"pieces": {"url_template": site.template},
                                            "browser": {"pages": 1}}
    with running_oven(tmp_path_factory.mktemp("bundle-site-oven"), config) as oven:
        yield oven


@pytest.fixture(scope="module")
def own_oven(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvenProcess]:
    """oven's bundled pieces, as shipped."""
    with running_oven(tmp_path_factory.mktemp("bundle-own-oven"),
                      {"browser": {"pages": 1}}) as oven:
        yield oven


def bundle_of(oven: OvenProcess, piece: str, **params: str) -> bytes:
    response = httpx.get(f"{oven.url}/bundle-html", params={"piece": piece, **params},
                         timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    return response.content


@pytest.mark.parametrize("minify", [True, False], ids=["minified", "not-minified"])
def test_the_gallery_bundle_opened_offline_renders_the_live_pieces_first_frame_pixel_for_pixel(
        site_oven: OvenProcess, site: PieceSite, browser: Browser, tmp_path: Path,
        minify: bool) -> None:
    html = bundle_of(site_oven, "gallery", **({} if minify else {"nominify": "1"}))
    live = render(browser, site.url("gallery"), offline=False, clock=False)
    offline = open_bundle(browser, html, tmp_path, "gallery", clock=False)
    assert live.errors == [] and offline.errors == []
    assert offline.network == [], "the bundle asked the network for something"
    assert live.state == GALLERY_STATE
    assert offline.state == live.state
    assert differing_pixels(live.image, offline.image) == 0
    # One import map (the piece's own is folded into it), the font and images inside.
    assert html.count(b'type="importmap"') == 1
    assert b"data:font/ttf;base64," in html and b"data:image/png;base64," in html


def test_the_pixel_comparison_notices_another_image_or_another_font(
        site_oven: OvenProcess, site: PieceSite, browser: Browser, tmp_path: Path) -> None:
    """The control for the test above: the same bundle with its images, then its font,
    swapped for other valid ones renders differently, so 0 differing pixels means the very
    files of the piece were there."""
    html = bundle_of(site_oven, "gallery")
    live = render(browser, site.url("gallery"), offline=False, clock=False)
    other_png = io.BytesIO()
    Image.new("RGB", (16, 16), (255, 0, 255)).save(other_png, "PNG")
    other_image = b"data:image/png;base64," + base64.b64encode(other_png.getvalue())
    other_font = b"data:font/ttf;base64," + base64.b64encode(OTHER_FONT.read_bytes())
    swapped = {
        "other-images": re.sub(rb"data:image/png;base64,[A-Za-z0-9+/=]+",
                               lambda _m: other_image, html),
        "other-font": re.sub(rb"data:font/ttf;base64,[A-Za-z0-9+/=]+",
                             lambda _m: other_font, html),
    }
    for name, changed in swapped.items():
        assert changed != html
        offline = open_bundle(browser, changed, tmp_path, name, clock=False)
        assert offline.state == GALLERY_STATE, name
        assert differing_pixels(live.image, offline.image) > 0, name


@pytest.mark.parametrize("piece", ["still", "anim", "clock", "webgl"])
def test_oven_s_own_pieces_bundled_render_the_same_first_frame_offline(
        own_oven: OvenProcess, browser: Browser, tmp_path: Path, piece: str) -> None:
    html = bundle_of(own_oven, piece)
    state = "({ready: window.ovenReady})"
    live = render(browser, f"http://pieces.oven.internal/{piece}/", offline=False, clock=True,
                  state=state)
    offline = open_bundle(browser, html, tmp_path, piece, clock=True, state=state)
    assert live.errors == [] and offline.errors == []
    assert offline.network == []
    assert differing_pixels(live.image, offline.image) == 0


def test_an_unknown_bundled_piece_is_a_404_json_error_naming_the_pieces(
        own_oven: OvenProcess) -> None:
    response = httpx.get(f"{own_oven.url}/bundle-html", params={"piece": "no-such-piece"},
                         timeout=30)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "unknown_piece" and "anim" in error["message"]


def test_a_code_without_a_code_template_is_a_422_naming_the_setting(
        own_oven: OvenProcess) -> None:
    response = httpx.get(f"{own_oven.url}/bundle-html", params={"code": "roz"}, timeout=30)
    assert response.status_code == 422
    assert "code_template" in response.json()["error"]["message"]
