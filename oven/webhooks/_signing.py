"""The X-Oven-Signature header: HMAC-SHA256 of the raw request body."""

from __future__ import annotations

import hashlib
import hmac


def sign(secret: str | bytes, body: bytes) -> str:
    """The X-Oven-Signature value for `body`: "sha256=" + hex HMAC-SHA256 keyed with `secret`."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(secret: str | bytes, body: bytes, signature: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return hmac.compare_digest(sign(secret, body), signature)
