"""The image an old client's <img> shows while its grab bakes (GET /grab/...?nowait=true)."""

from __future__ import annotations

import functools
import io

from PIL import Image, ImageDraw

# format -> (Pillow's name, content type). mp4 has none: no still stands in for a video.
_FORMATS = {"png": ("PNG", "image/png"), "webp": ("WEBP", "image/webp"),
            "gif": ("GIF", "image/gif"), "jpeg": ("JPEG", "image/jpeg")}
_BACKGROUND = (24, 24, 24)
_STRIPE = (64, 56, 16)


@functools.lru_cache(maxsize=64)
def placeholder(width: int, height: int, fmt: str) -> tuple[bytes, str] | None:
    """(bytes, content type) of a width x height placeholder, or None for a format without one.

    Cached: an <img> grid asks the same few sizes over and over while its grabs bake, and a
    large PNG takes tens of milliseconds to encode. Sides are bounded by the routes (1000 px).
    """
    known = _FORMATS.get(fmt)
    if known is None:
        return None
    name, content_type = known
    image = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(image)
    step = max(8, min(width, height) // 8)
    for offset in range(-height, width, step * 2):  # diagonal stripes: "still baking"
        draw.polygon([(offset, height), (offset + step, height),
                      (offset + step + height, 0), (offset + height, 0)], fill=_STRIPE)
    out = io.BytesIO()
    image.save(out, format=name)
    return out.getvalue(), content_type
