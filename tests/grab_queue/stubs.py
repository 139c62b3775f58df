"""Stand-ins for the BrowserPool, Encoder and Uploader, registered under their names.

Fakes of parts that run for real elsewhere, on purpose: the GrabQueue's logic (single-flight,
retries, freezing, leases, cancel) is tested here in seconds, with outcomes a real Chromium or
ffmpeg gives only by chance (a transient failure on the second try, a capture that hangs until
cancelled). The real parts stay covered through `oven serve` in tests/pipeline, tests/service
and tests/reliability. Each stub answers the same messages as the actor it stands for.
"""

from __future__ import annotations

import asyncio
import enum
import threading
from collections import deque
from pathlib import Path
from typing import Any

from oven.actors.browser_pool import CancelCapture, Capture
from oven.actors.encoder import CancelEncode, Encode
from oven.actors.runtime import ActorContext, AsyncActor
from oven.actors.uploader import Upload
from oven.capture import BrowserGone, CaptureResult, PieceError
from oven.encode import EncodeError, EncodeResult
from oven.storage import StorageError, StoredObject


class Outcome(enum.Enum):
    OK = "ok"
    TRANSIENT = "transient"  # a failure a retry can fix
    PERMANENT = "permanent"  # the piece's (or the file's) own failure
    HANG = "hang"  # until cancelled


class Script:
    """What a stub answers, call by call (then `default`), and what it saw; a test waits on
    its calls and cancels through a condition, never a sleep."""

    def __init__(self, default: Outcome = Outcome.OK) -> None:
        self.default = default
        self.plan: deque[Outcome] = deque()
        self.calls: list[str] = []  # job ids, one per call
        self.cancels: list[str] = []  # job ids named by a cancel message
        self.cancelled: list[str] = []  # job ids whose hanging work was cancelled
        self._changed = threading.Condition()

    def then(self, *outcomes: Outcome) -> Script:
        self.plan.extend(outcomes)
        return self

    def take(self, job_id: str) -> Outcome:
        with self._changed:
            self.calls.append(job_id)
            self._changed.notify_all()
            return self.plan.popleft() if self.plan else self.default

    def saw_cancel(self, job_id: str, *, cancelled: bool) -> None:
        with self._changed:
            (self.cancelled if cancelled else self.cancels).append(job_id)
            self._changed.notify_all()

    def wait_calls(self, count: int, *, timeout: float = 30) -> list[str]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.calls) >= count, timeout):
                raise AssertionError(f"{count} calls expected within {timeout} s; saw "
                                     f"{self.calls}")
            return list(self.calls)

    def wait_cancelled(self, job_id: str, *, timeout: float = 30) -> None:
        with self._changed:
            if not self._changed.wait_for(
                    lambda: job_id in self.cancels and job_id in self.cancelled, timeout):
                raise AssertionError(f"no cancel of {job_id} seen within {timeout} s: "
                                     f"cancels {self.cancels}, cancelled {self.cancelled}")


class _Stub(AsyncActor):
    def __init__(self, ctx: ActorContext, script: Script) -> None:
        super().__init__(ctx)
        self.script = script
        self.hanging: dict[str, asyncio.Task[Any]] = {}

    async def _play(self, job_id: str) -> Outcome:
        outcome = self.script.take(job_id)
        if outcome is not Outcome.HANG:
            return outcome
        task = asyncio.current_task()
        assert task is not None
        self.hanging[job_id] = task
        try:
            await asyncio.Event().wait()  # nothing sets it: only a cancel ends the wait
        except asyncio.CancelledError:
            self.script.saw_cancel(job_id, cancelled=True)
            raise
        finally:
            self.hanging.pop(job_id, None)
        raise AssertionError("unreachable")

    def _cancel(self, job_id: str) -> bool:
        self.script.saw_cancel(job_id, cancelled=False)
        task = self.hanging.get(job_id)
        if task is not None:
            # call_soon_threadsafe: the task belongs to the stub's loop, not this actor thread
            self.loop.call_soon_threadsafe(task.cancel)
        return task is not None


class StubBrowser(_Stub):
    """The BrowserPool's Capture and CancelCapture."""

    def receive(self, message: Any) -> Any:
        match message:
            case Capture():
                return self.defer(self._capture(message))
            case CancelCapture(job_id=job_id):
                return self._cancel(job_id)
        return super().receive(message)

    async def _capture(self, job: Capture) -> CaptureResult:
        outcome = await self._play(job.job_id)
        if outcome is Outcome.TRANSIENT:
            raise BrowserGone("the stub's browser went away")
        if outcome is Outcome.PERMANENT:
            raise PieceError("the stub's piece threw")
        frame = Path(job.out_dir) / "frame-00000.png"
        frame.write_bytes(b"\x89PNG stub frame")
        return CaptureResult(frames=[frame], frame_format="png", pixel_width=4, pixel_height=4,
                             ready="contract", frozen=False)


class StubEncoder(_Stub):
    """The Encoder's Encode and CancelEncode."""

    def receive(self, message: Any) -> Any:
        match message:
            case Encode():
                return self.defer(self._encode(message))
            case CancelEncode(job_id=job_id):
                return self._cancel(job_id)
        return super().receive(message)

    async def _encode(self, job: Encode) -> EncodeResult:
        outcome = await self._play(job.job_id)
        if outcome is not Outcome.OK:
            raise EncodeError("the stub's ffmpeg failed", format=job.request.format.value,
                              transient=outcome is Outcome.TRANSIENT)
        out = job.request.out_path
        out.write_bytes(b"stub result")
        return EncodeResult(path=out, size=out.stat().st_size,
                            content_type=job.request.format.content_type, frames=1, seconds=0.0)


class StubUploader(_Stub):
    """The Uploader's Upload."""

    def receive(self, message: Any) -> Any:
        match message:
            case Upload():
                return self.defer(self._upload(message))
        return super().receive(message)

    async def _upload(self, job: Upload) -> StoredObject:
        outcome = await self._play(job.job_id)
        if outcome is not Outcome.OK:
            raise StorageError("the stub's storage refused",
                               transient=outcome is Outcome.TRANSIENT)
        return StoredObject(key=job.key, size=job.path.stat().st_size, url=None)
