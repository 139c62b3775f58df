"""Uploader: results written to the storage backend (local disk or S3)."""

from oven.actors.uploader._actor import (
    Locate,
    Location,
    Upload,
    Uploader,
)

__all__ = [
    "Locate",
    "Location",
    "Upload",
    "Uploader",
]
