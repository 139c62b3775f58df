"""Encode failures, with what a caller needs to decide between retrying and giving up."""

from __future__ import annotations


class EncodeError(Exception):
    """ffmpeg failed or produced nothing.

    `transient` says whether the same request could succeed on a retry: True when ffmpeg was
    killed (timeout, a signal such as the OOM killer), False when it rejected the input.
    `stderr` is the tail of ffmpeg's stderr (bounded by `stderr_tail_bytes`).
    """

    def __init__(
        self,
        message: str,
        *,
        format: str,
        returncode: int | None = None,
        stderr: str = "",
        transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.format = format
        self.returncode = returncode
        self.stderr = stderr
        self.transient = transient


class EncodeTimeout(EncodeError):
    """ffmpeg ran past `timeout_s`; its process group was killed."""

    def __init__(self, message: str, *, format: str, stderr: str = "") -> None:
        super().__init__(message, format=format, stderr=stderr, transient=True)
