"""The `[showcase]` config section: app-store screenshot presets and OG images."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ShowcaseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    og_pieces: list[str] = Field(default_factory=lambda: ["still", "anim", "clock"],
                                 description="Pieces shown in OG mosaics and filmstrips.")
