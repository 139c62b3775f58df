"""The `[compat]` config section: whether the old service's routes are answered, and how."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

_STRICT = ConfigDict(extra="forbid")


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


class CompatSettings(BaseModel):
    model_config = _STRICT

    enabled: bool = Field(
        True, description="Answer the old service's routes beside oven's own (README "
        "\"Migrating from the old service\"); they take precedence where paths coincide.")
    grabs: GrabsCompatSettings = Field(default_factory=GrabsCompatSettings)
