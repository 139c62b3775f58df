"""Checking an archive off the event loop, in a pool shared by every way a bake comes in.

Unpacking and checking is CPU and disk work of up to bakes.check_timeout_s: a pool of its own,
so checks never take every thread of a loop's default executor, and at most two of them compete
with the HTTP loop (or the Baker's) for the GIL at once, whether the archive was uploaded to
POST /bakes or fetched for POST /bake.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from oven.bakes._archive import Tape, unpack
from oven.bakes._settings import BakeSettings

_CHECKS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bake-check")


async def check_archive(archive: Path, dest: Path, settings: BakeSettings) -> Tape:
    """Unpack and check `archive` into `dest` (it ends itself at bakes.check_timeout_s), then
    drop the archive; BakeRefused says what was wrong."""
    return await asyncio.get_running_loop().run_in_executor(
        _CHECKS, _check, archive, dest, settings)


def _check(archive: Path, dest: Path, settings: BakeSettings) -> Tape:
    try:
        return unpack(archive, dest, settings)
    finally:
        archive.unlink(missing_ok=True)
