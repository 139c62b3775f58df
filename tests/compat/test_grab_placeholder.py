"""The placeholder image itself: any size the routes allow, in each still format."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from oven.compat._placeholder import placeholder


@pytest.mark.parametrize("fmt, pil_format, content_type", [
    ("png", "PNG", "image/png"), ("webp", "WEBP", "image/webp"), ("gif", "GIF", "image/gif"),
    ("jpeg", "JPEG", "image/jpeg")])
@pytest.mark.parametrize("width, height", [(32, 32), (33, 997), (1000, 1000), (1, 1)])
def test_a_placeholder_is_an_image_of_exactly_the_size_and_format_asked(
        fmt: str, pil_format: str, content_type: str, width: int, height: int) -> None:
    made = placeholder(width, height, fmt)
    assert made is not None
    data, kind = made
    assert kind == content_type
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert (image.format, image.size) == (pil_format, (width, height))


def test_a_video_has_no_placeholder() -> None:
    assert placeholder(64, 64, "mp4") is None
