"""Why a bundle could not be made, as the HTTP edge answers it."""

from __future__ import annotations


class BundleRefused(Exception):
    """The piece cannot be bundled as asked: a 4xx with a code a client can act on. Raised for
    what the piece (or the request) decides, never for oven's own trouble."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class TooLarge(BundleRefused):
    def __init__(self, message: str) -> None:
        super().__init__(422, "bundle_too_large", message)


class FetchRefused(BundleRefused):
    """A file the piece loads may not be fetched (another origin after a redirect, a private
    address, a scheme other than http(s))."""

    def __init__(self, message: str) -> None:
        super().__init__(422, "fetch_refused", message)


class FetchFailed(BundleRefused):
    def __init__(self, message: str) -> None:
        super().__init__(422, "fetch_failed", message)
