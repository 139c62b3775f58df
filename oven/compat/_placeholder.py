"""The image an old client's <img> shows while its grab bakes (GET /grab/...?nowait=true)."""

from __future__ import annotations

import functools
import io
from typing import Any

from PIL import Image, ImageDraw

# format -> (Pillow's name, content type, the cheapest encoder settings that keep it small).
# mp4 has none: no still stands in for a video.
_FORMATS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "png": ("PNG", "image/png", {"compress_level": 1, "bits": 1}),
    "gif": ("GIF", "image/gif", {}),
    "webp": ("WEBP", "image/webp", {"lossless": True, "method": 0}),
    "jpeg": ("JPEG", "image/jpeg", {"quality": 70}),
}
_PALETTE = [24, 24, 24, 64, 56, 16]  # background, stripe
_CELL = 8  # the stripes are drawn at 1/8 size and scaled up: drawing costs 1/64


@functools.lru_cache(maxsize=64)
def placeholder(width: int, height: int, fmt: str) -> tuple[bytes, str] | None:
    """(bytes, content type) of a width x height placeholder, or None for a format without one.

    Anyone can ask for any size, so it is made as cheaply as it can be: two colours, drawn
    small and scaled up by nearest neighbour, encoded with the fastest settings (a few ms up to
    1000x1000 px, where a plain RGB WebP took a second of CPU). Cached: an <img> grid asks the
    same few sizes over and over while its grabs bake.
    """
    known = _FORMATS.get(fmt)
    if known is None:
        return None
    name, content_type, options = known
    small_w, small_h = -(-width // _CELL), -(-height // _CELL)
    small = Image.new("P", (small_w, small_h), 0)
    small.putpalette(_PALETTE)
    draw = ImageDraw.Draw(small)
    step = max(1, min(small_w, small_h) // 8)
    for offset in range(-small_h, small_w, step * 2):  # diagonal stripes: "still baking"
        draw.polygon([(offset, small_h), (offset + step, small_h),
                      (offset + step + small_h, 0), (offset + small_h, 0)], fill=1)
    image = small.resize((small_w * _CELL, small_h * _CELL), Image.Resampling.NEAREST)
    image = image.crop((0, 0, width, height))
    if name in ("WEBP", "JPEG"):
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format=name, **options)
    return out.getvalue(), content_type
