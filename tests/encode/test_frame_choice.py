"""Which frames a capture takes for each output: JPEG where the output is lossy anyway."""

from __future__ import annotations

import pytest

from oven.encode import EncoderSettings, Format, frame_format_for


@pytest.mark.parametrize(
    ("fmt", "settings", "frames"),
    [
        (Format.PNG, {}, "png"),
        (Format.GIF, {}, "png"),  # its palette is chosen from exact pixels
        (Format.WEBP, {"webp_lossless": True}, "png"),
        (Format.WEBP, {}, "jpeg"),
        (Format.MP4, {}, "jpeg"),
        (Format.JPEG, {}, "jpeg"),  # then the still is Chromium's JPEG as it is
        (Format.WEBP, {"lossy_frames": "png"}, "png"),
        (Format.MP4, {"lossy_frames": "png"}, "png"),
        (Format.JPEG, {"lossy_frames": "png"}, "png"),
        (Format.GIF, {"lossy_frames": "jpeg"}, "png"),
    ],
)
def test_lossy_outputs_get_jpeg_frames_and_exact_ones_png_frames(
    fmt: Format, settings: dict[str, object], frames: str
) -> None:
    assert frame_format_for(fmt, EncoderSettings.model_validate(settings)) == frames


def test_every_format_has_a_frame_format() -> None:
    for fmt in Format:
        for lossless in (False, True):
            assert frame_format_for(fmt, EncoderSettings(webp_lossless=lossless)) in ("png",
                                                                                      "jpeg")
