"""The `[storage]` config section: where results go and how to reach the bucket."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

MIB = 1024 * 1024
# S3 refuses multipart parts below 5 MiB (except the last), so no threshold may be lower.
MIN_MULTIPART_BYTES = 5 * MIB

CannedAcl = Literal[
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
]


class S3Settings(BaseModel):
    """An S3 or S3-compatible bucket (AWS, MinIO, R2, Ceph, moto in tests)."""

    model_config = ConfigDict(extra="forbid")

    endpoint_url: str | None = Field(
        default=None,
        description="S3 endpoint, e.g. http://127.0.0.1:9000; unset means AWS for `region`.",
    )
    region: str = Field(default="us-east-1", min_length=1, description="Signing region.")
    bucket: str | None = Field(
        default=None,
        min_length=3,
        max_length=255,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]$",
        description="Bucket that holds results (required when backend = 's3').",
    )
    prefix: str = Field(
        default="",
        max_length=512,
        description="Prepended verbatim to every key, e.g. 'results/'.",
    )
    path_style: bool = Field(
        default=False,
        description="Path-style addressing (endpoint/bucket/key); needed by most non-AWS servers.",
    )
    acl: CannedAcl | None = Field(
        default=None, description="Canned ACL set on each object, e.g. 'public-read'."
    )
    cache_control: str | None = Field(
        default="public, max-age=31536000, immutable",
        description="Cache-Control header stored with each object (keys are content-addressed).",
    )
    public_url_template: str | None = Field(
        default=None,
        description=(
            "Public URL of an object, e.g. 'https://cdn.example.com/{key}' ({key} is the full "
            "object key, {bucket} the bucket); unset means presigned GET URLs."
        ),
    )
    presign_ttl_s: int = Field(
        default=3600,
        ge=1,
        le=7 * 24 * 3600,  # the SigV4 maximum
        description="Lifetime of presigned GET URLs in seconds.",
    )
    access_key_id: SecretStr | None = Field(
        default=None, description="Access key id; unset means the normal AWS credential chain."
    )
    secret_access_key: SecretStr | None = Field(
        default=None, description="Secret access key; set together with access_key_id."
    )
    multipart_threshold_bytes: int = Field(
        default=8 * MIB,
        ge=MIN_MULTIPART_BYTES,
        le=5 * 1024 * MIB,
        description="Files at least this large are uploaded in parts of this size.",
    )
    connect_timeout_s: float = Field(
        default=5.0, gt=0, le=60, description="TCP/TLS connect timeout per attempt."
    )
    read_timeout_s: float = Field(
        default=30.0, gt=0, le=600, description="Timeout waiting for a response per attempt."
    )
    max_attempts: int = Field(
        default=2,
        ge=1,
        le=5,
        description="Attempts botocore makes per request (1 = no retry); the Uploader retries too.",
    )
    create_bucket: bool = Field(
        default=False, description="Create the bucket at start if missing (dev and tests)."
    )

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("endpoint_url must start with http:// or https://")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix_is_relative(cls, value: str) -> str:
        if value.startswith("/") or "\x00" in value or ".." in value.split("/"):
            raise ValueError("prefix must be relative, without '..' segments or NUL")
        return value

    @field_validator("public_url_template")
    @classmethod
    def _template_names_key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:
            raise ValueError(f"public_url_template is not a valid format string: {exc}") from exc
        if "key" not in fields:
            raise ValueError("public_url_template must contain {key}")
        unknown = fields - {"key", "bucket"}
        if unknown:
            raise ValueError(f"public_url_template may only use {{key}} and {{bucket}}: {unknown}")
        return value

    @model_validator(mode="after")
    def _keys_come_in_pairs(self) -> Self:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("set both access_key_id and secret_access_key, or neither")
        return self


class StorageSettings(BaseModel):
    """Result storage: a local directory (default) or an S3 bucket."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["local", "s3"] = Field(default="local", description="Where results go.")
    local_dir: Path = Field(
        default=Path("results"),
        description="Directory for the local backend; relative paths are under the data dir.",
    )
    s3: S3Settings = Field(default_factory=S3Settings, description="S3 backend settings.")

    @model_validator(mode="after")
    def _s3_needs_bucket(self) -> Self:
        if self.backend == "s3" and not self.s3.bucket:
            raise ValueError("storage.backend = 's3' requires storage.s3.bucket")
        return self
