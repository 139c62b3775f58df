"""A grab's stored result, and the one place the URL a client reads it from is built."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RESULTS_PATH = "/results/"  # where this service serves local storage (GET /results/{key})


def result_url(storage_key: str, url: str | None = None) -> str:
    """The storage's public URL if it has one; else the path under this service that serves
    the stored file (local storage has no public URL of its own)."""
    return url or f"{RESULTS_PATH}{storage_key}"


class GrabResult(BaseModel):
    """What a finished grab stored: the file's storage fields and the capture's facts.

    A job parked waiting for storage holds only the facts; the storage fields join them when
    its upload succeeds.
    """

    model_config = ConfigDict(extra="forbid")

    storage_key: str | None = None
    size: int | None = Field(default=None, ge=0, description="Bytes.")
    content_type: str | None = None
    url: str | None = Field(default=None, description="The storage's public URL, if any.")
    frames: int | None = Field(default=None, ge=0)
    frozen: bool | None = Field(default=None, description="The piece stopped painting.")
    # "ok" is what results recorded before the ready rules were named said for "contract".
    ready: Literal["contract", "expression", "selector", "painted", "timeout", "ok"] | None = Field(
        default=None, description="The rule that made the page ready (see README).")
    flags: list[Literal["blank", "dud", "frozen"]] | None = Field(
        default=None, description="What the frames suggest went wrong; [] for none.")
    page_errors: list[str] | None = Field(
        default=None, description="Uncaught errors and failed script loads of the page.")
    blocked_requests: list[str] | None = Field(
        default=None, description="Requests the page guard refused: 'reason url'.")

    @property
    def public_url(self) -> str | None:
        return None if self.storage_key is None else result_url(self.storage_key, self.url)
