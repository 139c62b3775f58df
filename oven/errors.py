"""oven's error base: what a caller may be told, and when to come back.

`Refusal` is "not now": a full queue or mailbox, a frozen piece, an actor restarting. It carries
the seconds after which to retry and the HTTP status and code the edge answers with, so the
edge maps the base once instead of every class by hand.
"""

from __future__ import annotations

from typing import ClassVar


class OvenError(Exception):
    """Base of oven's own errors."""


class Refusal(OvenError):
    """oven declined work it may accept later: retry after `retry_after_s` seconds."""

    status: ClassVar[int] = 503
    code: ClassVar[str | None] = None  # None: the usual code for `status`

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


__all__ = ["OvenError", "Refusal"]
