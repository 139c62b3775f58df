"""One job through the pipeline: capture (BrowserPool) → encode (Encoder) → store (Uploader).

Runs on the GrabQueue's loop; every hop is an ask with a timeout to the actor looked up by name
at send time. Failures are sorted here into transient (retry) and permanent (fail, count toward
freezing the piece); storage outages park the job in upload_pending with its file kept.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pykka

from oven import metrics
from oven.actors.browser_pool import Capture, CaptureTimeout
from oven.actors.encoder import CancelEncode, Encode
from oven.actors.runtime import AskTimeout, MailboxFull, ask_async
from oven.actors.uploader import Upload
from oven.capture import (
    BrowserGone,
    BrowserLostToMemoryKill,
    BrowserRecycled,
    GuardMode,
    NotAsAsked,
    PieceError,
    RendererCrashed,
)
from oven.config import Settings
from oven.encode import EncodeError, Format
from oven.grabs import GrabRequest
from oven.storage import StorageError
from oven.store import StoreUnavailable
from oven.supervisor import ActorUnavailable

log = logging.getLogger(__name__)

UPLOAD_TIMEOUT_S = 120.0  # one Upload ask, its quick retries included

# Failures a retry can fix: the browser died or was recycled, a peer was restarting or busy.
TRANSIENT = (BrowserGone, MailboxFull, ActorUnavailable, AskTimeout, pykka.ActorDeadError,
             StoreUnavailable)


class Failure(Exception):
    """A failed attempt. `piece_fault` says whether the piece itself failed (its page did not
    load, threw, crashed its own renderer, overran its memory or never finished before the
    deadline while it ran): only those count toward freezing it. oven's own trouble (a deadline
    passed while queued or waiting for a page, a browser that cannot start, a full disk, ffmpeg,
    an internal error) never does, or three hostile requests could freeze a piece for everyone.
    """

    def __init__(self, message: str, *, piece_fault: bool = False,
                 counts_attempt: bool = True) -> None:
        super().__init__(message)
        self.piece_fault = piece_fault
        # False when another job's page brought the attempt down (Chromium fell after killing
        # a neighbour's renderer over its memory ceiling): the retry gives the attempt back.
        self.counts_attempt = counts_attempt


class Transient(Failure):
    """Retry the job (if attempts and deadline allow)."""


class Permanent(Failure):
    """Fail the job with this message; a retry would fail the same way."""


class UploadPending(Exception):
    """The file is encoded and kept; storage is unavailable. Retry the upload later.

    `facts` (frames, frozen, ready) and `timings` of the capture are kept with the job, so the
    result recorded when the upload finally succeeds is the same as without the outage.
    """

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path
        self.facts: dict[str, Any] = {}
        self.timings: dict[str, float] = {}


@dataclass
class Outcome:
    result: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


def storage_key(capture_key: str, fmt: Format) -> str:
    return f"grabs/{capture_key[:2]}/{capture_key}.{fmt.extension}"


def _guard_mode(grab: GrabRequest, settings: Settings) -> GuardMode:
    """Raw URLs come from clients: every request of their pages is checked (see RequestGuard)."""
    if grab.url is None:
        return "off"
    return "schemes" if settings.pieces.allow_private else "public"


class Pipeline:
    """The three hops of one job, with the lookups and timeouts they need."""

    def __init__(self, lookup: Any, settings: Settings) -> None:
        self.lookup = lookup
        self.settings = settings

    def job_dir(self, job_id: str) -> Path:
        return self.settings.resolve(Path("jobs")) / job_id

    def pending_path(self, job_id: str, fmt: Format) -> Path:
        return self.settings.resolve(Path("pending")) / f"{job_id}.{fmt.extension}"

    async def run(self, job_id: str, key: str, grab: GrabRequest, target_url: str,
                  deadline_at: float, stage: Callable[[str], None],
                  page_free: Callable[[], None]) -> Outcome:
        """Capture, encode and upload.

        `stage(name)` is called as each hop begins; `page_free()` once the capture is done,
        so the queue can start the next capture while this job encodes. On failure the caller
        frees the slot once the failure is settled. It must be idempotent.
        """
        timings: dict[str, float] = {}
        work = self.job_dir(job_id)
        try:
            return await self._run(job_id, key, grab, target_url, deadline_at, stage,
                                   page_free, work, timings)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise Permanent(f"the job's temp dir {work.parent} is full: {exc}") from None
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)

    async def _run(self, job_id: str, key: str, grab: GrabRequest, target_url: str,
                   deadline_at: float, stage: Callable[[str], None],
                   page_free: Callable[[], None], work: Path,
                   timings: dict[str, float]) -> Outcome:
        shutil.rmtree(work, ignore_errors=True)
        frames_dir = work / "frames"
        frames_dir.mkdir(parents=True)
        remaining = deadline_at - time.time()
        if remaining <= 0:
            raise Permanent("deadline passed while the job was queued")
        stage("navigate")
        t0 = time.monotonic()
        request = grab.capture_request(target_url, guard=_guard_mode(grab, self.settings),
                                       encoder=self.settings.encoder)
        loop, capturing = asyncio.get_running_loop(), True

        def browser_stage(name: str) -> None:
            if capturing:  # not once we stopped waiting (a timeout): the job has moved on
                stage(name)

        def on_stage(name: str) -> None:
            # Called on the pool's loop, before its answer: call_soon_threadsafe queues the
            # stage on ours ahead of that answer, and the job's state belongs to our loop.
            loop.call_soon_threadsafe(browser_stage, name)

        try:
            captured = await ask_async(
                self.lookup.ref("browser"),
                Capture(job_id, request, frames_dir, remaining, on_stage=on_stage),
                timeout=remaining + 10)
        except NotAsAsked as exc:
            # The request's own ask (a selector, a reject) was not met: never the piece's fault.
            raise Permanent(str(exc)) from None
        except PieceError as exc:
            raise Permanent(str(exc), piece_fault=True) from None
        except CaptureTimeout as exc:
            # The piece's fault only when its page had most of the job's time and still did not
            # finish (a busy loop, a page that never settles): not while the job waited for a
            # page or a browser, and not when an overloaded queue left it only a moment.
            own_time = exc.in_page_s >= 0.5 * self.settings.queue.deadline_s
            raise Permanent(f"{exc}; the job's deadline has passed",
                            piece_fault=exc.in_page and own_time) from None
        except (BrowserLostToMemoryKill, BrowserRecycled) as exc:
            raise Transient(f"capture: {exc}", counts_attempt=False) from None
        except RendererCrashed as exc:
            raise Transient(f"capture: {exc}", piece_fault=True) from None
        except TRANSIENT as exc:
            raise Transient(f"capture: {exc}") from None
        finally:
            capturing = False
        timings["capture_total"] = time.monotonic() - t0
        for name, seconds in captured.timings.items():
            timings[name] = seconds
            metrics.STAGE_SECONDS.labels(stage=name).observe(seconds)
        page_free()

        stage("encode")
        t0 = time.monotonic()
        out = work / f"result.{grab.format.extension}"
        encode = grab.encode_request(captured.frames, out, captured.frame_offsets)
        encode_timeout = self.settings.encoder.timeout_s * 3 + 30
        try:
            # The encode carries its own deadline: ffmpeg stops when we stop waiting, even if
            # the cancel told below never arrives.
            encoded = await ask_async(
                self.lookup.ref("encoder"),
                Encode(job_id, encode, deadline=time.monotonic() + encode_timeout),
                timeout=encode_timeout)
        except (AskTimeout, asyncio.CancelledError):
            # We stop waiting, so ffmpeg must stop working: nobody would read its output.
            self._tell("encoder", CancelEncode(job_id))
            raise
        except EncodeError as exc:
            if exc.transient:
                raise Transient(f"encode: {exc}") from None
            raise Permanent(f"encode: {exc}") from None
        except TRANSIENT as exc:
            raise Transient(f"encode: {exc}") from None
        timings["encode"] = time.monotonic() - t0
        metrics.STAGE_SECONDS.labels(stage="encode").observe(timings["encode"])

        stage("upload")
        facts = {"frames": encoded.frames, "frozen": captured.frozen, "ready": captured.ready,
                 "flags": captured.flags,
                 **({"page_errors": captured.page_errors} if captured.page_errors else {}),
                 **({"blocked_requests": captured.blocked_requests}
                    if captured.blocked_requests else {})}
        try:
            stored = await self.upload(job_id, key, grab.format, encoded.path,
                                       encoded.content_type, timings)
        except UploadPending as pending:
            pending.facts, pending.timings = facts, timings
            raise
        return Outcome(result={**stored, **facts}, timings=timings)

    async def upload(self, job_id: str, key: str, fmt: Format, path: Path, content_type: str,
                     timings: dict[str, float]) -> dict[str, Any]:
        """Store the file; returns its storage fields (key, size, content type, URL)."""
        t0 = time.monotonic()
        stored_key = storage_key(key, fmt)
        try:
            stored = await ask_async(
                self.lookup.ref("uploader"),
                Upload(job_id, stored_key, path, content_type,
                       deadline=time.monotonic() + UPLOAD_TIMEOUT_S),
                timeout=UPLOAD_TIMEOUT_S + 5)
        except StorageError as exc:
            if not exc.transient:
                raise Permanent(f"upload: {exc}") from None
            raise UploadPending(f"upload: {exc}", self.keep_for_retry(job_id, fmt, path)) from None
        except TRANSIENT as exc:
            raise UploadPending(f"upload: {exc}", self.keep_for_retry(job_id, fmt, path)) from None
        timings["upload"] = time.monotonic() - t0
        metrics.STAGE_SECONDS.labels(stage="upload").observe(timings["upload"])
        return {"storage_key": stored.key, "size": stored.size, "content_type": content_type,
                "url": stored.url}

    def _tell(self, name: str, message: Any) -> None:
        try:
            self.lookup.ref(name).tell(message)
        except Exception as exc:  # best effort: a restarting peer has dropped the work anyway
            log.warning("%s not told %s: %s", name, type(message).__name__, exc)

    def keep_for_retry(self, job_id: str, fmt: Format, path: Path) -> Path:
        keep = self.pending_path(job_id, fmt)
        if path != keep:
            keep.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, keep)
        return keep
