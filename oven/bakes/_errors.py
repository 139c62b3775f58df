"""Why a bake was refused at the door: an HTTP status and a code a client can branch on."""

from __future__ import annotations


class BakeRefused(Exception):
    """The upload, fetch or archive may not be baked; `message` names the member and the limit.

    `status` is 413 for byte limits, 422 for content that is wrong or dangerous, 403 for a URL
    the [pieces] rules refuse.
    """

    def __init__(self, message: str, *, code: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
