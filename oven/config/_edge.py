"""The `[edge]` config section: what the HTTP edge lets in (CORS, per-client rate limits)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Job submission routes, by "[METHOD ]path prefix"; a GET rule covers HEAD too (the same
# handler runs). Polling (GET /grabs/{id}) is not limited: it costs one store read, and clients
# poll at their own pace while their jobs run. tests/security/test_edge_features.py lists every
# route as limited or not, so a new submission route cannot be missed.
DEFAULT_LIMITED = [
    "POST /grab",  # a prefix: POST /grabs, and the old service's POST /grab (and its admin routes)
    "GET /grab/",
    "GET /icon/",
    "GET /preview/",
    "POST /bakes",
    "GET /app-screenshots/",
    "/og/",
    "GET /bundle-html",  # the old service's offline bundles: fetching and minifying
    "POST /bundle-prewarm",
]
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class EdgeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port], or '*') allowed by CORS; empty turns CORS "
        "off. Applies at restart.")
    cors_max_age_s: int = Field(
        600, ge=0, le=86400, description="How long browsers may cache a CORS preflight answer.")
    trust_forwarded: bool = Field(
        False, description="Take the client address from X-Forwarded-For (its last entry, the "
        "one the proxy in front added). Only behind a proxy that sets it: clients forge it.")
    rate_limit_per_s: float = Field(
        10.0, ge=0, le=100_000,
        description="Job submissions per second per client address, sustained; 0 turns the "
        "limit off.")
    rate_limit_burst: int = Field(
        60, ge=1, le=1_000_000, description="Submissions a client may make at once.")
    rate_limited_paths: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LIMITED),
        description="Routes the limit applies to: '[METHOD ]path-prefix', e.g. 'POST /grabs'; "
        "a GET rule also covers HEAD, a rule without a method covers every method.")
    rate_limit_clients: int = Field(
        10_000, ge=1, le=10_000_000,
        description="Client addresses remembered (least recently seen forgotten first).")

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin == "*":
                continue
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or \
                    parts.path not in ("", "/") or parts.query or parts.fragment:
                raise ValueError(f"{origin!r} is not an origin: expected scheme://host[:port] "
                                 "or '*'")
        return [o.rstrip("/") for o in origins]

    @field_validator("rate_limited_paths")
    @classmethod
    def _paths(cls, paths: list[str]) -> list[str]:
        for entry in paths:
            method, _, prefix = entry.rpartition(" ")
            if (method and method not in _METHODS) or not prefix.startswith("/"):
                raise ValueError(f"{entry!r}: expected '[METHOD ]/path-prefix', e.g. "
                                 "'POST /grabs'")
        return paths
