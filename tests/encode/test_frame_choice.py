"""Which frames a capture takes for each output: JPEG where the output is lossy anyway, the
piece's canvas as WebP for a lossy WebP (when webpmux is there to assemble them)."""

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
        (Format.WEBP, {"webpmux_path": "/nonexistent/webpmux"}, "jpeg"),
        (Format.WEBP, {"webp_lossless": True, "canvas_frames": True}, "png"),
        (Format.MP4, {}, "jpeg"),
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


def test_every_format_has_a_frame_format() -> None:
    for fmt in Format:
        for lossless in (False, True):
            assert frame_format_for(fmt, EncoderSettings(webp_lossless=lossless)) in (
                "png", "jpeg", "webp")
