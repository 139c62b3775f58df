"""The `[edge]` config section: what the HTTP edge lets in (CORS, per-client rate limits)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EdgeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS; empty turns CORS off.")
