"""Bundles on demand: one build per piece at a time, a bounded number at once, and a cache of
finished bundles keyed by their content hash (a changed source makes a new bundle)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from oven.bundles._build import Progress, assemble, build_sources
from oven.bundles._errors import BundleRefused
from oven.bundles._fetch import Fetcher
from oven.config import BundlesSettings
from oven.grabs import origin_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bundle:
    piece: str
    url: str
    hash: str
    html: bytes
    files: int  # the page and every file inlined into it
    source_bytes: int
    minified: bool
    warnings: tuple[str, ...]
    made_at: float  # unix time
    build_s: float

    @property
    def size(self) -> int:
        return len(self.html)

    def summary(self) -> dict[str, Any]:
        """What describes the bundle, without its bytes."""
        return {"piece": self.piece, "hash": self.hash, "size": self.size,
                "files": self.files, "source_bytes": self.source_bytes,
                "minified": self.minified, "warnings": list(self.warnings),
                "made_at": self.made_at, "build_s": round(self.build_s, 3)}


class BundleCache:
    """Finished bundles by content hash, least recently used dropped first past the bound."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, Bundle] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Bundle | None:
        bundle = self._entries.get(key)
        if bundle is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return bundle

    def put(self, key: str, bundle: Bundle, max_bytes: int) -> None:
        """Keep `bundle` if it fits at all, then drop the least recently used past the bound
        (which a reload may have lowered)."""
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old.size
        if bundle.size <= max_bytes:
            self._entries[key] = bundle
            self.bytes += bundle.size
        while self.bytes > max_bytes and self._entries:
            _key, dropped = self._entries.popitem(last=False)
            self.bytes -= dropped.size

    def entries(self) -> list[Bundle]:
        return list(reversed(self._entries.values()))  # most recently used first


class _Build:
    """One build in flight, and whoever wants to hear how it goes."""

    def __init__(self) -> None:
        self.listeners: list[Progress] = []
        self.task: asyncio.Task[tuple[Bundle, bool]] | None = None

    def tell(self, stage: str, detail: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(stage, detail)


class Bundler:
    """Lives on the HTTP server's loop; every method is called there."""

    def __init__(self) -> None:
        self.cache = BundleCache()
        self._builds: dict[tuple[str, bool], _Build] = {}
        self._running = 0
        self._turns: asyncio.Condition | None = None

    def status(self, settings: BundlesSettings) -> dict[str, Any]:
        return {"entries": [b.summary() for b in self.cache.entries()],
                "count": len(self.cache.entries()), "bytes": self.cache.bytes,
                "max_bytes": settings.cache_max_bytes, "hits": self.cache.hits,
                "misses": self.cache.misses,
                "building": sorted(piece for piece, _minify in self._builds)}

    def admit(self, piece: str, settings: BundlesSettings, *, minify: bool) -> None:
        """Raise 429 when a new build of `piece` would find no room (joining one does)."""
        if (piece, minify) in self._builds:
            return
        if len(self._builds) >= settings.concurrency + settings.max_waiting:
            raise BundleRefused(429, "busy", f"{len(self._builds)} bundles are being made or "
                                "waiting ([compat.bundles] concurrency, max_waiting); try "
                                "again shortly")

    async def bundle(self, piece: str, url: str, settings: BundlesSettings, *, minify: bool,
                     progress: Progress | None = None) -> tuple[Bundle, bool]:
        """The bundle of `piece` (at `url`), and whether it came from the cache. A second
        caller for the same piece joins the build under way."""
        key = (piece, minify)
        build = self._builds.get(key)
        if build is None:
            self.admit(piece, settings, minify=minify)
            build = _Build()
            self._builds[key] = build
            build.task = asyncio.get_running_loop().create_task(
                self._run(build, key, piece, url, settings, minify),
                name=f"bundle {piece}")
        if progress is not None:
            build.listeners.append(progress)
        assert build.task is not None
        try:
            # Shielded: one caller going away must not cancel the build the others wait on.
            return await asyncio.shield(build.task)
        finally:
            if progress is not None and progress in build.listeners:
                build.listeners.remove(progress)

    async def _run(self, build: _Build, key: tuple[str, bool], piece: str, url: str,
                   settings: BundlesSettings, minify: bool) -> tuple[Bundle, bool]:
        try:
            async with self._turn(settings.concurrency):
                build.tell("started", {"piece": piece})
                async with asyncio.timeout(settings.timeout_s):
                    return await self._make(build, piece, url, settings, minify)
        except TimeoutError:
            raise BundleRefused(422, "bundle_timeout", f"bundling {piece} took more than "
                                f"{settings.timeout_s:g} s ([compat.bundles] timeout_s)") from None
        finally:
            self._builds.pop(key, None)

    async def _make(self, build: _Build, piece: str, url: str, settings: BundlesSettings,
                    minify: bool) -> tuple[Bundle, bool]:
        started = time.monotonic()
        async with Fetcher(origin_of(url), settings) as fetcher:
            sources = await build_sources(url, fetcher, max_depth=settings.max_depth,
                                          progress=build.tell)
        content_hash = sources.content_hash(minify)
        cached = self.cache.get(content_hash)
        if cached is not None:
            build.tell("cached", {"hash": content_hash})
            # The same files may be named twice (a piece and its $code): answer by this name.
            return dataclasses.replace(cached, piece=piece, url=url), True
        build.tell("minifying" if minify else "inlining",
                   {"files": len(sources.files) + 1, "bytes": sources.bytes})
        # The thread cannot be stopped from here: it checks the deadline itself between files.
        deadline = started + settings.timeout_s
        assembled = await asyncio.to_thread(
            assemble, sources, minify=minify, max_minify_bytes=settings.max_minify_bytes,
            max_bundle_bytes=settings.max_bundle_bytes, deadline=deadline)
        bundle = Bundle(piece=piece, url=url, hash=content_hash, html=assembled.html,
                        files=len(sources.files) + 1, source_bytes=sources.bytes,
                        minified=minify,
                        warnings=tuple(sources.warnings + assembled.warnings),
                        made_at=time.time(), build_s=time.monotonic() - started)
        self.cache.put(content_hash, bundle, settings.cache_max_bytes)
        log.info("bundled %s: %d files, %d -> %d bytes in %.2f s", piece, bundle.files,
                 bundle.source_bytes, bundle.size, bundle.build_s)
        return bundle, False

    def _turn(self, limit: int) -> _Turn:
        if self._turns is None:
            self._turns = asyncio.Condition()
        return _Turn(self, self._turns, lambda: limit)


class _Turn:
    """A slot among `concurrency` builds (read at each wait, so a reload takes effect)."""

    def __init__(self, bundler: Bundler, turns: asyncio.Condition,
                 limit: Callable[[], int]) -> None:
        self.bundler = bundler
        self.turns = turns
        self.limit = limit

    async def __aenter__(self) -> None:
        async with self.turns:
            await self.turns.wait_for(lambda: self.bundler._running < self.limit())
            self.bundler._running += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self.turns:
            self.bundler._running -= 1
            self.turns.notify_all()
