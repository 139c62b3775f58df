"""App-store screenshot sets and OG images composed from piece stills."""

from oven.showcase._settings import ShowcaseSettings

__all__ = ["ShowcaseSettings"]
