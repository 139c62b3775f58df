"""App-store screenshot sets and OG images composed from piece stills."""

from oven.showcase._compose import LAYOUTS, Box, boxes_for, compose
from oven.showcase._og import CachedImage, OgCache, OgRenderer, RenderFailed, utc_today
from oven.showcase._settings import Preset, ShowcaseSettings
from oven.showcase._zip import ZipStream

__all__ = [
    "LAYOUTS",
    "Box",
    "CachedImage",
    "OgCache",
    "OgRenderer",
    "Preset",
    "RenderFailed",
    "ShowcaseSettings",
    "ZipStream",
    "boxes_for",
    "compose",
    "utc_today",
]
