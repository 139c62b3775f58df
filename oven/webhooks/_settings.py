"""The `[webhooks]` config section: signed result callbacks for grabs and bakes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

MIN_SECRET_LENGTH = 16


class WebhookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret: SecretStr | None = Field(
        None,
        description="HMAC-SHA256 key for X-Oven-Signature. Unset: callback_url is refused (422).",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) callbacks may go to. Empty: callbacks refused.",
    )
    allow_private: bool = Field(
        False, description="Allow callbacks to loopback/private addresses (tests, internal hooks)."
    )
    max_attempts: int = Field(5, ge=1, le=50, description="Deliveries tried before giving up.")
    initial_backoff_s: float = Field(
        1.0, gt=0, le=3600, description="Wait after the first failed attempt; doubles each time."
    )
    max_backoff_s: float = Field(30.0, gt=0, le=86400, description="Cap of the doubling wait.")
    timeout_s: float = Field(
        10.0, gt=0, le=300, description="Whole-attempt timeout (connect, send, read the answer)."
    )
    max_pending: int = Field(
        1000, ge=1, le=1_000_000,
        description="Deliveries in flight at once; more are dropped (counted and logged).",
    )

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # A short HMAC key can be brute-forced from one signed body; refuse it at startup.
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters")
        return value

    @model_validator(mode="after")
    def _backoff_order(self) -> WebhookSettings:
        if self.max_backoff_s < self.initial_backoff_s:
            raise ValueError("max_backoff_s must be >= initial_backoff_s")
        return self
