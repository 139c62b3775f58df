"""A still's one frame is the file a PNG grab returns as it is, so Chromium compresses it well."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageChops

from oven.capture import Browser, CaptureRequest, capture, piece_url

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.mark.parametrize(("piece", "density"), [("still", 1.0), ("anim", 1.0), ("still", 2.0)])
async def test_a_png_still_frame_is_compressed_for_keeping_and_holds_the_same_pixels(
    browser: Browser, tmp_path: Path, piece: str, density: float
) -> None:
    # The frames of an animation are compressed for speed: ffmpeg reads them once and they go.
    # Measured on the still piece at 640x360: 24.3 KB for speed, 13.0 KB for keeping (ffmpeg's
    # PNG at its level 6: 11.9 KB).
    size = {"width": 640, "height": 360, "density": density}
    still = await capture(browser, CaptureRequest(url=piece_url(piece), clock="virtual",
                                                  **size), tmp_path / "still")
    frames = await capture(browser, CaptureRequest(url=piece_url(piece), clock="virtual",
                                                   frames=2, **size), tmp_path / "frames")
    kept, fast = still.frames[0], frames.frames[0]
    assert kept.stat().st_size < 0.8 * fast.stat().st_size, (kept.stat(), fast.stat())
    with Image.open(kept) as a, Image.open(fast) as b:
        assert a.size == b.size == (int(640 * density), int(360 * density))
        assert ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is None
