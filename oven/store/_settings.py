"""The `[store]` config section: which metadata backend holds jobs, the cache and frozen pieces."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class StoreSettings(BaseModel):
    """Metadata + durable job queue: SQLite (default, one file) or MongoDB (production)."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["sqlite", "mongodb"] = Field(
        default="sqlite", description="Where jobs, the result cache and frozen pieces are kept."
    )
    sqlite_path: Path = Field(
        default=Path("oven.db"),
        description="SQLite database file; relative paths are under the data dir.",
    )
    mongodb_uri: SecretStr = Field(
        default=SecretStr("mongodb://127.0.0.1:27017"),
        description="MongoDB connection string (may carry credentials, so it is masked).",
    )
    mongodb_database: str = Field(
        default="oven",
        min_length=1,
        max_length=63,
        pattern=r"^[^/\\. \"$*<>:|?]+$",  # characters MongoDB refuses in database names
        description="MongoDB database holding the `grabs`, `cache` and `frozen` collections.",
    )
    timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description=(
            "MongoDB server selection and operation timeout; SQLite busy timeout (how long a "
            "writer waits for another process's lock)."
        ),
    )
    cache_ttl_s: int = Field(
        default=7 * 24 * 3600,
        ge=0,
        description="How long a finished capture answers repeated requests (0 disables caching).",
    )
    recent_limit: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Default number of jobs `list_jobs` returns (e.g. GET /grabs).",
    )

    @field_validator("mongodb_uri")
    @classmethod
    def _uri_is_mongodb(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("mongodb_uri must start with mongodb:// or mongodb+srv://")
        return value
