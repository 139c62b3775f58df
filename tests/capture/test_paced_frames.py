"""The real clock's paced frames: once capture starts, a page draws exactly the frames taken."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from PIL import Image

from oven.capture import Browser, BrowserSettings, CaptureRequest, capture, marked_pids, new_marker
from oven.capture._clock import PACED_FRAMES_JS

from .conftest import PageServer, make_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")


def red(frame: Path) -> int:
    return int(Image.open(frame).convert("RGB").getpixel((4, 4))[0])  # type: ignore[index]


async def test_each_frame_taken_is_one_fresh_animation_frame_of_the_page(
        browser: Browser, page_server: PageServer, tmp_path: Path) -> None:
    result = await capture(browser, CaptureRequest(url=f"{page_server.base}/rafcount", width=32,
                                                   height=32, frames=6, fps=10), tmp_path)
    counts = [red(f) for f in result.frames]
    # At the display's 60 Hz the page would run ~6 frames between two taken at 10 fps.
    assert [b - a for a, b in itertools.pairwise(counts)] == [1] * 5, counts


async def test_without_pacing_the_page_runs_at_the_displays_rate(
        page_server: PageServer, tmp_path: Path) -> None:
    settings: BrowserSettings = make_settings(pages=1, pace_frames=False)
    marker = new_marker()
    unpaced = await Browser.launch(settings, marker=marker)
    try:
        # 2 fps: half a second between frames taken, so even a renderer starved by a busy
        # host runs several of its own frames in between.
        result = await capture(unpaced, CaptureRequest(url=f"{page_server.base}/rafcount",
                                                       width=32, height=32, frames=4, fps=2),
                               tmp_path)
    finally:
        await unpaced.close(timeout_s=5.0)
    assert marked_pids(marker) == []
    counts = [red(f) for f in result.frames]
    steps = [(b - a) % 256 for a, b in itertools.pairwise(counts)]
    assert sum(steps) > 3 * 2, counts  # more than one page frame per frame taken


async def test_a_frame_the_page_asked_for_before_the_hold_waits_for_the_capturer(
        browser: Browser, page_server: PageServer) -> None:
    # The page's next frame is already requested from Chromium when the capture holds it; the
    # frames a screenshot makes Chromium draw must not run it (it ran there, and the first
    # frame taken showed the page one step on from its canvas: the canvas check then failed).
    async with browser.page_slot() as slot:
        await slot.add_init_script(PACED_FRAMES_JS)  # as a real-clock capture does
        await slot.page.goto(f"{page_server.base}/rafcount")
        await slot.page.wait_for_function("window.ovenReady")
        held = await slot.page.evaluate("(() => { window.__ovenPace.hold(); return count; })()")
        for _ in range(3):
            await slot.cdp.send("Page.captureScreenshot", {"format": "png"})
        assert await slot.page.evaluate("count") == held
        await slot.page.evaluate("window.__ovenPace.frame()")
        assert await slot.page.evaluate("count") == held + 1
