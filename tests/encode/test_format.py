"""One Format: each output format's content type, suffix, animation and encoders, defined once."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from oven.encode import Format, required_encoders
from oven.grabs import GrabRequest


def test_formats_know_their_content_type_and_extension() -> None:
    # (moved here from test_encoder_settings.py: the one place that lists every format)
    assert [(f.content_type, f.extension) for f in Format] == [
        ("image/png", "png"), ("image/jpeg", "jpg"), ("image/webp", "webp"),
        ("image/gif", "gif"), ("video/mp4", "mp4"),
    ]


def test_every_format_names_its_content_type_suffix_animation_and_encoders() -> None:
    assert [(f.value, f.content_type, f.extension, f.animates, f.encoders) for f in Format] == [
        ("png", "image/png", "png", False, ("png",)),
        ("jpeg", "image/jpeg", "jpg", False, ("mjpeg",)),
        ("webp", "image/webp", "webp", True, ("libwebp", "libwebp_anim")),
        ("gif", "image/gif", "gif", True, ("gif",)),
        ("mp4", "video/mp4", "mp4", True, ("libx264",)),
    ]


def test_the_ffmpeg_check_asks_for_exactly_the_encoders_the_formats_name() -> None:
    assert required_encoders() == ("png", "mjpeg", "libwebp", "libwebp_anim", "gif", "libx264")


def test_a_grab_request_carries_the_encoders_format_not_a_copy_of_it() -> None:
    grab = GrabRequest.model_validate({"piece": "anim", "format": "webp", "frames": 4})
    assert grab.format is Format.WEBP


@pytest.mark.parametrize("fmt", [f for f in Format if not f.animates])
def test_a_still_format_refuses_frames_and_names_every_animated_format(fmt: Format) -> None:
    with pytest.raises(ValidationError, match="use webp, gif or mp4 for frames > 1"):
        GrabRequest.model_validate({"piece": "anim", "format": fmt.value, "frames": 2})


@pytest.mark.parametrize(("suffix", "expected"), [
    ("png", Format.PNG), ("jpg", Format.JPEG), ("jpeg", Format.JPEG), ("webp", Format.WEBP),
    ("gif", Format.GIF), ("mp4", Format.MP4), ("txt", None), ("", None), ("PNG", None),
])
def test_a_file_suffix_names_its_format_or_none(suffix: str, expected: Format | None) -> None:
    assert Format.from_suffix(suffix) is expected


def test_only_gif_and_mp4_default_to_motion_on_the_sync_route() -> None:
    assert [f for f in Format if f.motion_by_default] == [Format.GIF, Format.MP4]
