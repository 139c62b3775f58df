"""App-store screenshot sets and OG images composed from piece stills."""

from oven.showcase._compose import LAYOUTS, ONE_PIECE, Box, boxes_for, compose, pieces_for
from oven.showcase._og import (
    CachedImage,
    OgCache,
    OgImage,
    OgRender,
    OgRenderer,
    RenderFailed,
    StillRendering,
    utc_today,
)
from oven.showcase._settings import Preset, ShowcaseSettings
from oven.showcase._zip import ZipStream

__all__ = [
    "LAYOUTS",
    "ONE_PIECE",
    "Box",
    "CachedImage",
    "OgCache",
    "OgImage",
    "OgRender",
    "OgRenderer",
    "Preset",
    "RenderFailed",
    "ShowcaseSettings",
    "StillRendering",
    "ZipStream",
    "boxes_for",
    "compose",
    "pieces_for",
    "utc_today",
]
