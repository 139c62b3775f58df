"""The `[bakes]` config section: tape baking (frame archives → MP4 + thumbnail)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class BakeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_fps: float = Field(30.0, gt=0, le=240, description="fps when neither a soundtrack "
                               "nor timing.json says otherwise.")
