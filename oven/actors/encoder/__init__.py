"""Encoder: ffmpeg slots that turn captured frames into files."""

from oven.actors.encoder._actor import (
    CancelEncode,
    Encode,
    EncodeBake,
    Encoder,
)

__all__ = [
    "CancelEncode",
    "Encode",
    "EncodeBake",
    "Encoder",
]
