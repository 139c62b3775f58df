"""Offline bundles: one self-contained HTML file of a piece, with every script, module, style,
font and image it loads inlined and its JS and CSS minified (the old service's `bundler`)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from oven.bundles._errors import BundleRefused, FetchFailed, FetchRefused, TooLarge

if TYPE_CHECKING:
    from oven.bundles._build import BUNDLE_FORMAT
    from oven.bundles._bundler import Bundle, BundleCache, Bundler

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

# Where the names that bring the parsers live. Loaded on first use: tree-sitter, lexbor,
# tdewolff's minifier (a Go runtime) and tinycss2 are ~8 MB of a service's PSS that makes no
# bundle; the errors above are light and load at once.
_LAZY = {"BUNDLE_FORMAT": "oven.bundles._build", "Bundle": "oven.bundles._bundler",
         "BundleCache": "oven.bundles._bundler", "Bundler": "oven.bundles._bundler"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
