"""The `[compat]` config section: whether the old service's routes are answered, and how."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

_STRICT = ConfigDict(extra="forbid")


class CompatSettings(BaseModel):
    model_config = _STRICT

    enabled: bool = Field(
        True, description="Answer the old service's routes beside oven's own (README "
        "\"Migrating from the old service\"); they take precedence where paths coincide.")
