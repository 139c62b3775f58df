"""Offline bundles: one self-contained HTML file of a piece, with every script, module, style,
font and image it loads inlined and its JS and CSS minified (the old service's `bundler`)."""

from oven.bundles._build import BUNDLE_FORMAT
from oven.bundles._bundler import Bundle, BundleCache, Bundler
from oven.bundles._errors import BundleRefused, FetchFailed, FetchRefused, TooLarge

__all__ = [
    "BUNDLE_FORMAT",
    "Bundle",
    "BundleCache",
    "BundleRefused",
    "Bundler",
    "FetchFailed",
    "FetchRefused",
    "TooLarge",
]
