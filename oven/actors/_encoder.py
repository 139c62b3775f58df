"""Encoder actor: ffmpeg runs with bounded concurrency; frames stay on disk, never in messages."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from oven import _metrics as metrics
from oven.actors._async import AsyncActor
from oven.actors._base import ActorContext
from oven.actors._limiter import Limiter
from oven.config import Settings
from oven.encode import (
    BakeEncodeRequest,
    EncodeRequest,
    EncodeResult,
    EncoderSettings,
    encode,
    encode_bake,
    running_pids,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Encode:
    job_id: str
    request: EncodeRequest


@dataclass(frozen=True)
class EncodeBake:
    """A tape bake (frames + soundtrack → MP4): queues for the same slots as grab encodes."""

    job_id: str
    request: BakeEncodeRequest


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
        assert self.limiter is not None
        task = asyncio.current_task()
        if task is not None:
            self._by_job[job.job_id] = task
        try:
            return await self._encode_bounded(job)
        finally:
            self._by_job.pop(job.job_id, None)

    async def _encode_bounded(self, job: Encode | EncodeBake) -> EncodeResult:
        assert self.limiter is not None
        async with self.limiter.slot():
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
