"""OG images cached per UTC day, served stale while today's renders (one render per layout).

The cache is plain files, `<layout>-<YYYY-MM-DD>.png` in one directory, so it survives restarts
and an operator can look at (or delete) what crawlers are being shown. One OgRenderer serves
one directory: oven's /og images and each of the old service's OG images have their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from oven import metrics
from oven.errors import Refusal

log = logging.getLogger(__name__)


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@dataclass(frozen=True)
class CachedImage:
    day: dt.date
    path: Path


class OgCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, layout: str, day: dt.date) -> Path:
        return self.directory / f"{layout}-{day.isoformat()}.png"

    def latest(self, layout: str, *, today: dt.date) -> CachedImage | None:
        """The newest image of `layout` dated today or earlier."""
        found = [image for image in self._images(layout) if image.day <= today]
        return max(found, key=lambda image: image.day) if found else None

    def store(self, layout: str, day: dt.date, png: bytes) -> Path:
        """Write atomically (a reader never sees half a PNG), then drop older days."""
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path(layout, day)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{layout}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(png)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        for image in self._images(layout):
            if image.day < day:
                with contextlib.suppress(OSError):
                    image.path.unlink()
        return target

    def _images(self, layout: str) -> list[CachedImage]:
        images = []
        for path in self.directory.glob(f"{layout}-*.png"):
            try:
                day = dt.date.fromisoformat(path.stem[len(layout) + 1:])
            except ValueError:
                continue  # not one of ours
            images.append(CachedImage(day, path))
        return images


OgRender = Callable[[str, dt.date], Awaitable[bytes]]
Freshness = Literal["fresh", "stale", "waited"]


class RenderFailed(Refusal):
    status, code = 503, "render_failed"

    def __init__(self, layout: str, reason: str, retry_after_s: float) -> None:
        super().__init__(f"rendering the {layout} OG image failed: {reason}",
                         retry_after_s=retry_after_s)


class StillRendering(Refusal):
    status, code = 503, "rendering"


@dataclass(frozen=True)
class OgImage:
    """An image as a request is answered with it: `fresh` (today's), `stale` (an older day's,
    while today's renders) or `waited` (rendered while this request waited)."""

    layout: str
    day: dt.date
    path: Path
    freshness: Freshness


class OgRenderer:
    """Single-flight renders per layout on the caller's event loop.

    `render(layout, day)` returns PNG bytes; its captures go through the grab queue's
    background lane, so a render never takes a page slot from interactive grabs. `label`
    prefixes the layout in metrics, telling apart renderers that share layout names.
    """

    def __init__(self, cache: OgCache, render: OgRender, *, retry_s: float,
                 label: str = "") -> None:
        self.cache = cache
        self._render = render
        self.retry_s = retry_s
        self.label = label
        self._tasks: dict[str, asyncio.Task[Path]] = {}
        self._failed: dict[str, tuple[float, str]] = {}  # layout -> (monotonic time, reason)

    def running(self, layout: str) -> bool:
        task = self._tasks.get(layout)
        return task is not None and not task.done()

    def last_failure(self, layout: str) -> str | None:
        failed = self._failed.get(layout)
        return None if failed is None else failed[1]

    async def current(self, layout: str, *, today: dt.date, wait_s: float) -> OgImage:
        """Today's image at once; else an older one at once while today's renders; with none
        on disk, the render waited for up to wait_s.

        Raises RenderFailed (with nothing to show) or StillRendering (waited in vain).
        """
        image = self.cache.latest(layout, today=today)
        if image is not None and image.day == today:
            return OgImage(layout, today, image.path, "fresh")
        try:
            task = self.ensure(layout, today)
        except RenderFailed:
            if image is not None:
                return OgImage(layout, image.day, image.path, "stale")
            raise
        if image is not None:  # stale-while-revalidate: a crawler never waits
            return OgImage(layout, image.day, image.path, "stale")
        try:
            # shield: a request that gives up (or a client that hangs up) must not cancel
            # the render every other request is waiting on.
            async with asyncio.timeout(wait_s):
                path = await asyncio.shield(task)
        except TimeoutError:
            raise StillRendering(f"the {layout} OG image is still rendering after "
                                 f"{wait_s:g} s", retry_after_s=5) from None
        return OgImage(layout, today, path, "waited")

    async def read(self, layout: str, *, today: dt.date,
                   wait_s: float) -> tuple[OgImage, bytes]:
        """current() and its bytes, read whole (an OG PNG is small): a render finishing now
        may delete an older file between the lookup and the read, so that is tried again."""
        for _attempt in range(3):
            image = await self.current(layout, today=today, wait_s=wait_s)
            try:
                return image, await asyncio.to_thread(image.path.read_bytes)
            except FileNotFoundError:
                continue
        raise Refusal(f"the {layout} OG image kept changing under this request; retry",
                      retry_after_s=1)

    def ensure(self, layout: str, day: dt.date) -> asyncio.Task[Path]:
        """The running render of `layout`, or a new one for `day`.

        Raises RenderFailed instead of starting one within retry_s of a failure, so a broken
        piece is not re-rendered on every crawler hit.
        """
        task = self._tasks.get(layout)
        if task is not None and not task.done():
            return task
        failed = self._failed.get(layout)
        if failed is not None:
            left = self.retry_s - (time.monotonic() - failed[0])
            if left > 0:
                raise RenderFailed(layout, failed[1], left)
        task = asyncio.get_running_loop().create_task(
            self._run(layout, day), name=f"og-render-{self.label}{layout}")
        # Holding the task here also keeps it from being garbage-collected mid-render.
        self._tasks[layout] = task
        task.add_done_callback(_consume)
        return task

    async def _run(self, layout: str, day: dt.date) -> Path:
        started = time.perf_counter()
        label = self.label + layout
        log.info("og render layout=%s day=%s started", label, day)
        try:
            png = await self._render(layout, day)
            path = await asyncio.to_thread(self.cache.store, layout, day, png)
        except asyncio.CancelledError:
            metrics.OG_RENDERS.labels(layout=label, outcome="cancelled").inc()
            raise
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            self._failed[layout] = (time.monotonic(), reason)
            metrics.OG_RENDERS.labels(layout=label, outcome="failed").inc()
            log.warning("og render layout=%s failed after %.1f s: %s", label,
                        time.perf_counter() - started, reason)
            raise RenderFailed(layout, reason, self.retry_s) from exc
        self._failed.pop(layout, None)
        metrics.OG_RENDERS.labels(layout=label, outcome="ok").inc()
        log.info("og render layout=%s day=%s done in %.1f s (%d bytes)", label, day,
                 time.perf_counter() - started, len(png))
        return path


def _consume(task: asyncio.Task[Path]) -> None:
    # Nobody may await a render whose requests were all answered with a stale image; reading
    # the exception here keeps asyncio from logging "exception was never retrieved".
    if not task.cancelled():
        task.exception()
