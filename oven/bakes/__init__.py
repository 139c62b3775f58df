"""Tape baking: a streamed archive of PNG frames (+ soundtrack, timing) becomes an MP4."""

from oven.bakes._settings import BakeSettings

__all__ = ["BakeSettings"]
