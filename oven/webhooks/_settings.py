"""The `[webhooks]` config section: signed result callbacks for grabs and bakes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class WebhookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(5, ge=1, le=50, description="Deliveries tried before giving up.")
