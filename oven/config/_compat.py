"""The `[compat]` config section: whether the old service's routes are answered, and how."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

_STRICT = ConfigDict(extra="forbid")
_OG_PIECE = re.compile(r"^\$?[a-z0-9][a-z0-9_-]{0,63}\Z")  # \Z: "$" lets "anim\n" through
_MIN_SECRET = 16
_MIB = 1024 * 1024


class BundlesSettings(BaseModel):
    """`[compat.bundles]`: offline HTML bundles of a piece (GET /bundle-html). Every bound is
    there because a piece decides what it loads: a hostile one can import 10k modules or point
    at a 1 GB image, and the whole bundle is held in memory while it is made."""

    model_config = _STRICT

    max_files: int = Field(
        200, ge=1, le=10_000, description="Files a bundle may inline (pages, scripts, modules, "
        "styles, fonts, images); past it the bundle is refused with 422.")
    max_depth: int = Field(
        16, ge=1, le=256, description="Longest chain of references (page -> module -> module "
        "...) followed; past it the bundle is refused with 422.")
    max_file_bytes: int = Field(
        8 * _MIB, ge=1024, le=256 * _MIB, description="Largest single file; a download is cut "
        "off (and the bundle refused) as soon as it passes this.")
    max_total_bytes: int = Field(
        24 * _MIB, ge=1024, le=1024 * _MIB, description="Sum of every file fetched for one "
        "bundle.")
    timeout_s: float = Field(
        30.0, gt=0, le=600, description="Time to make one bundle, fetching and minifying.")
    max_redirects: int = Field(
        5, ge=0, le=20, description="Redirects followed for one file (each hop checked).")
    concurrency: int = Field(
        2, ge=1, le=16, description="Bundles made at once (minifying takes a core).")
    max_waiting: int = Field(
        16, ge=0, le=1000, description="Bundle requests waiting for a slot before 429.")
    cache_max_bytes: int = Field(
        64 * _MIB, ge=0, le=4096 * _MIB, description="Memory for finished bundles, kept by "
        "content hash (least recently used dropped first); 0 keeps none.")
    max_prewarm: int = Field(
        50, ge=1, le=1000, description="Pieces one POST /bundle-prewarm may name.")
    max_bundle_bytes: int = Field(
        48 * _MIB, ge=1024, le=2048 * _MIB, description="Largest bundle made (inlined files "
        "are base64, a third larger; a file named many times is in it many times).")
    max_minify_bytes: int = Field(
        512 * 1024, ge=0, le=64 * _MIB, description="Largest script minified; a larger "
        "one is inlined as it is (the JS minifier's time grows with the square of a scope's "
        "declarations, and a running minification cannot be stopped).")


class GrabsCompatSettings(BaseModel):
    """`[compat.grabs]`: the old grab routes (GET/POST /grab, icons, previews, cleanup)."""

    model_config = _STRICT

    skip_cache_min_interval_s: float = Field(
        60.0, ge=0, le=86_400, description="skipCache forgets a cached result at most this "
        "often per capture (per instance); sooner, the cached result answers. Anyone may send "
        "skipCache, so this bounds how often one URL can be made to capture again; the admin "
        "token is not bound. 0 = every time.")
    stale_after_s: float = Field(
        300.0, gt=0, le=86_400, description="POST /grab-cleanup cancels grabs queued or "
        "running for longer than this since admission (the old service's 5 minutes).")


class CompatBakeSettings(BaseModel):
    """`[compat.bakes]`: the old service's tape bakes (POST /bake and its callback)."""

    model_config = _STRICT

    callback_secret: SecretStr | None = Field(
        None, description="The old service's shared CALLBACK_SECRET: POST /bake must carry it "
        "as callbackSecret (else 401), and the completion callback sends it back as 'secret'. "
        "Unset: POST /bake is refused (403).")
    scale: int = Field(
        3, ge=1, le=8, description="Nearest-neighbour upscale of every tape baked through "
        "POST /bake (the old service's was 3).")
    public_url: str | None = Field(
        None, max_length=2048, description="This service's base URL as callback receivers "
        "reach it, for mp4Url and thumbnailUrl of results on local storage (a bucket's URLs "
        "are absolute already). Unset: the base URL the POST /bake arrived at.")

    @field_validator("callback_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # It is the only thing standing between anyone and the bake queue.
        if value is not None and len(value.get_secret_value()) < _MIN_SECRET:
            raise ValueError(f"must be at least {_MIN_SECRET} characters")
        return value

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or \
                parts.fragment:
            raise ValueError(f"{value!r}: expected http(s)://host[:port][/path]")
        return value.rstrip("/") + "/"


class AppScreenshotSettings(BaseModel):
    """`[compat.app_screenshots]`: the old app-screenshot routes' re-capture (?force=true)."""

    model_config = _STRICT

    force_interval_s: float = Field(
        300.0, ge=0, le=86400, description="?force=true captures one piece at one preset again "
        "at most once in this many seconds (per instance); sooner is answered 429 with "
        "Retry-After, unless the request carries the admin token. 0: no limit.")


class CompatOgSettings(BaseModel):
    """`[compat.og]`: which pieces feed the old service's OG images and backdrop. Each is
    rendered once a UTC day through the grab queue's background lane; the one-piece layouts
    (featured, code-split) and the backdrop show one piece of their list, a different one
    each day."""

    model_config = _STRICT

    kidlisp_pieces: list[str] = Field(
        default_factory=lambda: ["still", "anim", "clock"], min_length=1, max_length=16,
        description="Pieces of /kidlisp-og.png (mosaic and filmstrip show them all).")
    kidlisp_title: str = Field("KidLisp.com", max_length=64,
                               description="Written in the caption band of featured and "
                               "code-split KidLisp images.")
    notepat_pieces: list[str] = Field(default_factory=lambda: ["clock"], min_length=1,
                                      max_length=16, description="Pieces of /notepat-og.png.")
    notepat_layout: Literal["featured", "mosaic", "filmstrip", "code-split"] = Field(
        "featured", description="Layout of /notepat-og.png.")
    notepat_title: str = Field("notepat", max_length=64,
                               description="Written in the caption band of /notepat-og.png.")
    backdrop_pieces: list[str] = Field(default_factory=lambda: ["anim"], min_length=1,
                                       max_length=64,
                                       description="Pieces of /kidlisp-backdrop.webp.")
    backdrop_size: int = Field(256, ge=16, le=4096, description="Width and height of the "
                               "backdrop in CSS px (the WebP is this times backdrop_density; "
                               "both within [limits]).")
    backdrop_density: float = Field(3.0, ge=1, le=8, description="Device pixel ratio of the "
                                    "backdrop capture.")
    backdrop_frames: int = Field(48, ge=2, le=10_000, description="Frames of the animated "
                                 "backdrop (within [limits] max_frames).")
    backdrop_fps: float = Field(12.0, gt=0, le=240, description="Frames a second of the "
                                "backdrop (within [limits] max_fps).")

    @field_validator("kidlisp_pieces", "notepat_pieces", "backdrop_pieces")
    @classmethod
    def _piece_names(cls, pieces: list[str]) -> list[str]:
        for name in pieces:
            if not _OG_PIECE.match(name):
                raise ValueError(f"piece {name[:80]!r}: a piece name or a $code (a-z, 0-9, "
                                 "'-' and '_', at most 64)")
        return pieces


class CompatSettings(BaseModel):
    model_config = _STRICT

    enabled: bool = Field(
        True, description="Answer the old service's routes beside oven's own (README "
        "\"Migrating from the old service\"); they take precedence where paths coincide.")
    bundles: BundlesSettings = Field(default_factory=BundlesSettings)
    bakes: CompatBakeSettings = Field(default_factory=CompatBakeSettings)
    app_screenshots: AppScreenshotSettings = Field(default_factory=AppScreenshotSettings)
    grabs: GrabsCompatSettings = Field(default_factory=GrabsCompatSettings)
    og: CompatOgSettings = Field(default_factory=CompatOgSettings)
