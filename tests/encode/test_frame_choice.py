"""Which frames a capture takes for each output: JPEG where the output is lossy anyway, the
piece's canvas as WebP for a lossy WebP (when webpmux is there to assemble them), as JPEG for
an MP4 (or a lossy WebP without webpmux) animation; stills take screenshots."""

from __future__ import annotations

import pytest

from oven.encode import EncoderSettings, Format, frame_format_for


@pytest.mark.parametrize(
    ("fmt", "settings", "frames"),
    [
        (Format.PNG, {}, "png"),
        (Format.GIF, {}, "png"),  # its palette is chosen from exact pixels
        (Format.WEBP, {"webp_lossless": True}, "png"),
        (Format.WEBP, {}, "webp"),
        (Format.WEBP, {"canvas_frames": False}, "jpeg"),
        (Format.WEBP, {"webpmux_path": "/nonexistent/webpmux"}, "canvas-jpeg"),
        (Format.WEBP, {"webpmux_path": "/nonexistent/webpmux", "canvas_frames": False}, "jpeg"),
        (Format.WEBP, {"webp_lossless": True, "canvas_frames": True}, "png"),
        (Format.MP4, {}, "canvas-jpeg"),
        (Format.MP4, {"canvas_frames": False}, "jpeg"),
        (Format.JPEG, {}, "jpeg"),  # then the still is Chromium's JPEG as it is
        (Format.WEBP, {"lossy_frames": "png"}, "png"),
        (Format.MP4, {"lossy_frames": "png"}, "png"),
        (Format.JPEG, {"lossy_frames": "png"}, "png"),
        (Format.GIF, {"lossy_frames": "jpeg"}, "png"),
    ],
)
def test_lossy_outputs_get_jpeg_or_canvas_frames_and_exact_ones_png_frames(
    fmt: Format, settings: dict[str, object], frames: str
) -> None:
    assert frame_format_for(fmt, EncoderSettings.model_validate(settings)) == frames


@pytest.mark.parametrize(("fmt", "settings", "frames"), [
    (Format.MP4, {}, "jpeg"),
    (Format.WEBP, {"webpmux_path": "/nonexistent/webpmux"}, "jpeg"),
    (Format.WEBP, {}, "webp"),  # the canvas's WebP frame is the still as it is
    (Format.JPEG, {}, "jpeg"),
    (Format.PNG, {}, "png"),
])
def test_a_still_takes_a_screenshot_where_an_animation_would_take_canvas_jpeg(
    fmt: Format, settings: dict[str, object], frames: str
) -> None:
    assert frame_format_for(fmt, EncoderSettings.model_validate(settings), still=True) == frames


def test_every_format_has_a_frame_format() -> None:
    for fmt in Format:
        for lossless in (False, True):
            for still in (False, True):
                assert frame_format_for(fmt, EncoderSettings(webp_lossless=lossless),
                                        still=still) in ("png", "jpeg", "webp", "canvas-jpeg")
