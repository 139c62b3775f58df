"""The two ways a capture fails: the piece's fault (permanent) or the browser's (transient)."""

from __future__ import annotations


class PieceError(Exception):
    """The piece cannot be captured as asked (bad status, load error, uncaught exception).

    Permanent: retrying gives the same answer. The message is meant for a person.
    """


class NotAsAsked(Exception):
    """The capture ran but cannot give what the request asked for: its selector matched
    nothing, its `reject` turned down a blank or frozen capture. Permanent, and the request's
    doing, not the piece's: it never counts toward freezing the piece. For a person."""


class BrowserGone(Exception):
    """Chromium, the page or its renderer died or was closed under the capture.

    Transient: the caller retries the job on a fresh browser.
    """


class RendererCrashed(BrowserGone):
    """The piece's own renderer died (e.g. out of memory): retried like any browser trouble, but
    it is the piece's doing, so repeated crashes count toward freezing it."""


class BrowserLostToMemoryKill(BrowserGone):
    """Chromium itself went down within seconds of a renderer being killed over its memory
    ceiling (measured on Chromium 156: the browser process segfaults in about half the cases
    where the kill lands while Page.captureScreenshot is in flight). The jobs of the other pages
    are innocent: they are retried without an attempt counted against them or their pieces."""


class BrowserRecycled(BrowserGone):
    """oven closed the browser under a running capture (a recycle: a hung slot reset, memory
    pressure, restart_after). The job did nothing wrong: it is retried without an attempt
    counted against it or its piece."""


class MemoryCeilingExceeded(PieceError):
    """The piece's page grew past its memory ceiling and its renderer was killed for it.

    Permanent and the piece's fault: the same page would grow past the same ceiling again."""
