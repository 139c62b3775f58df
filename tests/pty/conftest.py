"""Real children on real PTYs: session factory, readers that ack, and a leftover-process check."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import psutil
import pytest

from oven.pty import Closed, Output, PtyClient, PtyProfile, PtySession, PtySettings, Resync

PY = sys.executable

# Copies stdin to a file until N bytes arrived, then says so on the tty (raw: no echo, no \r).
RAW_CONSUMER = """
import os, sys
want, path = int(sys.argv[1]), sys.argv[2]
got = 0
with open(path, "wb") as out:
    while got < want:
        block = os.read(0, 1 << 16)
        if not block:
            break
        out.write(block)
        got += len(block)
os.write(1, b"done %d\\n" % got)
"""


def raw_consumer(size: int, path: os.PathLike[str] | str) -> PtyProfile:
    return PtyProfile(command=[PY, "-c", RAW_CONSUMER, str(size), str(path)], raw=True)


def sessions_alive(sids: list[int]) -> list[int]:
    """Pids of processes still running (zombies aside) in any of these sessions."""
    left = []
    for pid in psutil.pids():
        try:
            if os.getsid(pid) in sids and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.append(pid)
        except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
            continue
    return left


SessionFactory = Callable[..., Any]


@pytest.fixture
async def spawn() -> AsyncIterator[SessionFactory]:
    """spawn(profile, cols=80, rows=24, **settings) -> a running PtySession, closed after the
    test; the teardown asserts that no process of any session is left."""
    sessions: list[PtySession] = []
    counter = 0

    async def make(profile: PtyProfile, *, cols: int = 80, rows: int = 24, **overrides: Any):
        nonlocal counter
        counter += 1
        settings = PtySettings(**overrides)
        session = await PtySession.spawn(
            f"t{counter}", profile, cols=cols, rows=rows, settings=settings
        )
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        await asyncio.wait_for(session.close(), 15)
    sids = [s.pid for s in sessions if s.pid is not None]
    assert sessions_alive(sids) == []


async def read_until(
    client: PtyClient, done: Callable[[bytearray], bool], *, timeout: float, ack: bool = True
) -> bytes:
    """Collect output (acking as it is read) until done(collected) or the session closes."""
    seen = bytearray()
    async with asyncio.timeout(timeout):
        while not done(seen):
            message = await client.next(timeout=timeout)
            if isinstance(message, Output):
                seen += message.data
                if ack:
                    client.ack(message.end)
            elif isinstance(message, Closed):
                break
            elif isinstance(message, Resync):
                raise AssertionError(f"unexpected resync: {message}")
    return bytes(seen)


async def until(condition: Callable[[], bool], *, timeout: float, every: float = 0.005) -> None:
    """Bounded wait for state that has no event of its own (e.g. `session.paused`)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        await asyncio.sleep(every)


async def echo_latencies(session: PtySession, client: PtyClient, count: int) -> list[float]:
    """Type one key at a time into a cooked `cat` and time its echo, in seconds."""
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        await session.write(b"k")
        await read_until(client, lambda seen: b"k" in seen, timeout=5)
        latencies.append(time.perf_counter() - started)
    return latencies


def interleaves_two_copies(out: bytes, text: bytes) -> bool:
    """True if `out` is `text` twice, interleaved at any points (a tty's echo and cat's copy).

    Exact search over (a, b) = bytes taken from each copy, jumping over runs where only one copy
    can supply the next byte (one find + one compare per run), so 20 MiB takes about a second.
    """
    n = len(text)
    if len(out) != 2 * n:
        return False
    stack = [(0, 0)]
    seen: set[tuple[int, int]] = set()
    while stack:
        a, b = stack.pop()
        if a < b:
            a, b = b, a  # the copies are identical, so the pair is unordered
        if (a, b) in seen:
            continue
        seen.add((a, b))
        k = a + b
        if k == 2 * n:
            return True
        a_from = out.find(text[a : a + 1], k) if a < n else -1  # first byte A could supply
        b_from = out.find(text[b : b + 1], k) if b < n else -1
        a_from = 2 * n if a_from < 0 else a_from
        b_from = 2 * n if b_from < 0 else b_from
        if a_from == k and b_from == k:
            stack += [(a + 1, b), (a, b + 1)]
            continue
        # Only one copy can supply out[k:stop]; it must supply all of it.
        from_a = a_from == k
        stop = b_from if from_a else a_from
        length = stop - k
        start = a if from_a else b
        if start + length > n or out[k:stop] != text[start : start + length]:
            continue
        a2, b2 = (a + length, b) if from_a else (a, b + length)
        if stop == 2 * n:
            stack.append((a2, b2))
            continue
        byte = out[stop]
        if a2 < n and text[a2] == byte:
            stack.append((a2 + 1, b2))
        if b2 < n and text[b2] == byte:
            stack.append((a2, b2 + 1))
    return False
