"""Fetching a bake archive from a `url` on an allowed origin, streamed and size-limited."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from oven.bakes._errors import BakeRefused
from oven.bakes._settings import BakeSettings
from oven.grabs import PiecesSettings, TargetRefused, url_target


async def fetch_archive(url: str, dest: Path, *, settings: BakeSettings,
                        pieces: PiecesSettings) -> int:
    """Download `url` into `dest`; returns its size. Same origin rules as grabs ([pieces])."""
    try:
        # The URL as a browser reads it, the one that was checked, is the one fetched.
        url = await url_target(url, pieces)
    except TargetRefused as exc:
        raise BakeRefused(str(exc), code="target_refused", status=403) from None
    limit = settings.max_archive_bytes
    size = 0
    try:
        # Redirects are not followed: the next hop would skip the origin and address checks.
        # trust_env off: a proxy from the environment must not see (or reroute) the fetch.
        async with asyncio.timeout(settings.fetch_timeout_s), httpx.AsyncClient(
                follow_redirects=False, trust_env=False,
                timeout=settings.fetch_timeout_s) as client, client.stream("GET", url) as reply:
            if reply.status_code != 200:
                raise BakeRefused(f"url: {url} answered HTTP {reply.status_code}, not 200",
                                  code="fetch_failed")
            declared = reply.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise BakeRefused(f"url: archive of {declared} bytes is over "
                                  f"bakes.max_archive_bytes ({limit})", code="too_large",
                                  status=413)
            with dest.open("xb") as out:
                async for chunk in reply.aiter_raw():
                    size += len(chunk)
                    if size > limit:
                        raise BakeRefused(f"url: archive over bakes.max_archive_bytes ({limit} "
                                          "bytes)", code="too_large", status=413)
                    out.write(chunk)
    except TimeoutError:
        raise BakeRefused(f"url: fetching took over bakes.fetch_timeout_s "
                          f"({settings.fetch_timeout_s:g} s)", code="fetch_failed") from None
    except httpx.HTTPError as exc:
        raise BakeRefused(f"url: fetch failed ({type(exc).__name__}: {exc})",
                          code="fetch_failed") from None
    return size
