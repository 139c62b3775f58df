"""Encoder actor: ffmpeg runs with bounded concurrency; frames stay on disk, never in messages.

An Encode or EncodeBake may carry its own `deadline` (a `time.monotonic()` instant). The work
stops when it passes, waiting for a slot or mid-run (ffmpeg's process group is killed), and is
answered with EncodeDeadlinePassed: an asker that gave up, or forgot to send CancelEncode,
cannot leave ffmpeg running.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from oven import metrics
from oven.actors.runtime import ActorContext, AsyncActor, Limiter, lower_thread_priority
from oven.config import Settings
from oven.encode import (
    BakeEncodeRequest,
    EncodeRequest,
    EncodeResult,
    EncoderSettings,
    EncodeTimeout,
    encode,
    encode_bake,
    running_pids,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Encode:
    job_id: str
    request: EncodeRequest
    deadline: float | None = None  # time.monotonic() instant; see the module docstring


@dataclass(frozen=True)
class EncodeBake:
    """A tape bake (frames + soundtrack → MP4): queues for the same slots as grab encodes."""

    job_id: str
    request: BakeEncodeRequest
    deadline: float | None = None  # time.monotonic() instant; see the module docstring


class EncodeDeadlinePassed(EncodeTimeout):
    """The encode's own deadline passed; its ffmpeg, if it had started, was killed (transient:
    the input was not at fault)."""


@dataclass
class _Progress:
    queued_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None  # when it got a slot and ffmpeg was started


@dataclass(frozen=True)
class CancelEncode:
    """Stop a job's encode: its ffmpeg process group is killed by the encode's cleanup."""

    job_id: str


class Encoder(AsyncActor):
    def __init__(self, ctx: ActorContext, settings: Settings) -> None:
        super().__init__(ctx)
        self.settings: EncoderSettings = settings.encoder
        self.limiter: Limiter | None = None
        self._by_job: dict[str, asyncio.Task[Any]] = {}
        # ffmpeg leads its own process group (pgid == pid): a hung encoder's runs can be killed.
        ctx.processes.add_provider(running_pids)

    async def start_async(self) -> None:
        lower_thread_priority(self.settings.nice)  # ffmpeg, started from this loop, inherits it
        self.limiter = Limiter(self.settings.effective_concurrency())

    def reconfigure(self, settings: Any) -> None:
        self.settings = settings.encoder
        if self.limiter is not None:
            self.spawn(self.limiter.resize(self.settings.effective_concurrency()))

    def receive(self, message: Any) -> Any:
        match message:
            case Encode():
                return self.defer(self._encode(message))
            case EncodeBake():
                return self.defer(self._encode(message))
            case CancelEncode(job_id=job_id):
                task = self._by_job.get(job_id)
                if task is not None:
                    # call_soon_threadsafe: the task belongs to the actor's loop, not this thread
                    self.loop.call_soon_threadsafe(task.cancel)
                return task is not None
        return super().receive(message)

    async def _encode(self, job: Encode | EncodeBake) -> EncodeResult:
        task = asyncio.current_task()
        if task is not None:
            self._by_job[job.job_id] = task
        progress = _Progress()
        try:
            if job.deadline is None:
                return await self._encode_bounded(job, progress)
            if job.deadline <= time.monotonic():
                raise _deadline_passed(job, progress)
            limit = asyncio.timeout_at(
                asyncio.get_running_loop().time() + job.deadline - time.monotonic())
            try:
                async with limit:
                    return await self._encode_bounded(job, progress)
            except TimeoutError:
                if not limit.expired():
                    raise
                # The cancellation has already killed and reaped ffmpeg (encode's cleanup).
                raise _deadline_passed(job, progress) from None
        finally:
            self._by_job.pop(job.job_id, None)

    async def _encode_bounded(self, job: Encode | EncodeBake, progress: _Progress
                              ) -> EncodeResult:
        assert self.limiter is not None
        async with self.limiter.slot():
            progress.started_at = time.monotonic()
            metrics.ENCODER_RUNNING.inc()
            try:
                if isinstance(job, EncodeBake):
                    result = await encode_bake(job.request, self.settings)
                else:
                    result = await encode(job.request, self.settings)
            finally:
                metrics.ENCODER_RUNNING.dec()
        log.debug("encoded job=%s %s in %.2f s", job.job_id, result.content_type, result.seconds)
        return result


def _deadline_passed(job: Encode | EncodeBake, progress: _Progress) -> EncodeDeadlinePassed:
    fmt = "mp4" if isinstance(job, EncodeBake) else job.request.format.value
    now = time.monotonic()
    if progress.started_at is None:
        where = (f"after {now - progress.queued_at:.1f} s waiting for an encoder slot "
                 "(ffmpeg never started)")
    else:
        where = (f"{now - progress.started_at:.1f} s into the encode (after "
                 f"{progress.started_at - progress.queued_at:.1f} s waiting for a slot); "
                 "ffmpeg was killed")
    log.info("encode job=%s: deadline passed %s", job.job_id, where)
    return EncodeDeadlinePassed(f"{fmt} encode of job {job.job_id}: its deadline passed {where}",
                                format=fmt)
