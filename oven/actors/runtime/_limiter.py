"""A concurrency bound whose size can change while work is running."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class Limiter:
    def __init__(self, size: int) -> None:
        self.size = size
        self.running = 0
        self._changed = asyncio.Condition()

    async def resize(self, size: int) -> None:
        """Growing lets waiters in at once; shrinking lets running work finish."""
        async with self._changed:
            self.size = size
            self._changed.notify_all()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: self.running < self.size)
            self.running += 1
        try:
            yield
        finally:
            async with self._changed:
                self.running -= 1
                self._changed.notify_all()
