"""Per-request capture options in real Chromium: element clip, transparency, media, injection.

Options are per job: the slot's tab serves the next job too, so every test also checks the
next capture on the same browser is back to the defaults.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from oven.capture import Browser, CaptureRequest, NotAsAsked, capture, piece_url

from .conftest import PageServer

pytestmark = pytest.mark.asyncio(loop_scope="session")


def pixel(frame: Path, xy: tuple[int, int] = (2, 2)) -> tuple[int, ...]:
    return tuple(Image.open(frame).convert("RGBA").getpixel(xy))  # type: ignore[arg-type]


async def test_selector_capture_is_exactly_the_canvas(browser: Browser, page_server: PageServer,
                                                       tmp_path: Path) -> None:
    url = f"{page_server.base}/unsignalled"
    one = await capture(browser, CaptureRequest(url=url, width=700, height=460, frames=2,
                                                selector="#c"), tmp_path / "1")
    assert (one.pixel_width, one.pixel_height) == (640, 360)
    assert all(Image.open(f).size == (640, 360) for f in one.frames)
    two = await capture(browser, CaptureRequest(url=url, width=700, height=460, density=2,
                                                selector="canvas"), tmp_path / "2")
    assert Image.open(two.frames[0]).size == (1280, 720)
    # The header above the canvas is not in the clip: its first row is the canvas's colour.
    assert pixel(one.frames[0], (0, 0))[:3] != (255, 255, 255)


async def test_a_selector_matching_nothing_or_invalid_is_the_requests_fault(
        browser: Browser, page_server: PageServer, tmp_path: Path) -> None:
    url = f"{page_server.base}/unsignalled"
    with pytest.raises(NotAsAsked, match="matched no element"):
        await capture(browser, CaptureRequest(url=url, selector="#nothing"), tmp_path / "a")
    with pytest.raises(NotAsAsked, match="not a valid CSS selector"):
        await capture(browser, CaptureRequest(url=url, selector="canvas]["), tmp_path / "b")


async def test_a_transparent_background_keeps_alpha_and_the_next_job_is_opaque(
        browser: Browser, page_server: PageServer, tmp_path: Path) -> None:
    url = f"{page_server.base}/empty"
    clear = await capture(browser, CaptureRequest(url=url, background="transparent"),
                          tmp_path / "t")
    assert pixel(clear.frames[0])[3] == 0
    assert clear.flags == ["blank"]  # fully transparent is blank
    for k in range(3):  # whichever slot the next jobs land on
        plain = await capture(browser, CaptureRequest(url=url), tmp_path / f"p{k}")
        assert pixel(plain.frames[0]) == (255, 255, 255, 255)


async def test_transparent_needs_png_frames() -> None:
    with pytest.raises(ValueError, match="needs png frames"):
        CaptureRequest(url="http://x/", background="transparent", frame_format="jpeg")


async def test_color_scheme_and_reduced_motion_reach_the_page_and_do_not_stay(
        browser: Browser, page_server: PageServer, tmp_path: Path) -> None:
    url = f"{page_server.base}/media"
    asked = await capture(browser, CaptureRequest(url=url, width=64, height=64,
                                                  color_scheme="dark", reduced_motion=True),
                          tmp_path / "a")
    assert pixel(asked.frames[0])[:3] == (255, 255, 128)
    for k in range(3):
        plain = await capture(browser, CaptureRequest(url=url, width=64, height=64),
                              tmp_path / f"p{k}")
        assert pixel(plain.frames[0])[:3] == (0, 0, 128)


async def test_injected_styles_and_scripts_apply_before_ready(
        browser: Browser, page_server: PageServer, tmp_path: Path) -> None:
    result = await capture(browser, CaptureRequest(
        url=f"{page_server.base}/empty", width=64, height=64,
        styles=["body { background: rgb(0, 0, 255) }"],
        scripts=["document.body.style.borderTop = '10px solid rgb(255, 0, 0)';"
                 "window.injected = true;"],
        wait_for="window.injected === true"), tmp_path)
    assert result.ready == "expression"
    assert pixel(result.frames[0], (5, 3))[:3] == (255, 0, 0)
    assert pixel(result.frames[0], (5, 40))[:3] == (0, 0, 255)


async def test_a_jpeg_frame_takes_the_quality_asked(browser: Browser, tmp_path: Path) -> None:
    sizes = []
    for quality in (20, 95):
        request = CaptureRequest(url=piece_url("still"), frame_format="jpeg",
                                 jpeg_quality=quality)
        result = await capture(browser, request, tmp_path / str(quality))
        sizes.append(result.frames[0].stat().st_size)
    assert sizes[0] * 2 < sizes[1]
