"""Output flow control: a controller that does not ack pauses its own session only; observers
never pause anything, fall off the ring (Resync) or are dropped when stalled."""

from __future__ import annotations

import asyncio
import logging
import re

import psutil
import pytest

from oven.pty import ClientDetached, Output, PtyProfile, Resync

from .conftest import PY, SessionFactory, echo_latencies, read_until, until

MIB = 1024 * 1024
KIB = 1024


def printer(total: int, then_wait: bool = False) -> PtyProfile:
    """A raw-mode child that writes `total` bytes of 'x' (and then waits for a line)."""
    script = (
        "import os, sys\n"
        "block = b'x' * 65536\n"
        f"left = {total}\n"
        "while left:\n"
        "    left -= os.write(1, block[:left])\n" + ("sys.stdin.readline()\n" if then_wait else "")
    )
    return PtyProfile(command=[PY, "-c", script], raw=True)


async def test_controller_that_never_acks_pauses_the_session_and_bounds_memory(
    spawn: SessionFactory,
) -> None:
    me = psutil.Process()
    rss_before = me.memory_info().rss
    total = 50 * MIB
    session = await spawn(printer(total))
    controller = session.attach(controlling=True)
    typist = await spawn(PtyProfile(command=["cat"]))
    typist_client = typist.attach(controlling=True)

    # The controller reads everything offered but never acks: nothing was rendered.
    async def read_without_acking() -> None:
        while True:
            await controller.next(timeout=30)

    reading = asyncio.create_task(read_without_acking())
    await until(lambda: session.paused, timeout=10)
    latencies = await echo_latencies(typist, typist_client, 50)
    rss_growth = me.memory_info().rss - rss_before
    reading.cancel()
    held = session.ring_end - session.ring_start
    print(
        f"\npaused at {session.ring_end / MIB:.2f} MiB of {total / MIB:.0f} MiB; RSS growth "
        f"{rss_growth / MIB:.1f} MiB; echo in another session: max "
        f"{max(latencies) * 1000:.1f} ms over {len(latencies)} keys"
    )
    assert session.paused
    assert session.ring_end < 2 * MIB  # pause_high (1 MiB) plus at most one read wakeup
    assert held <= session.settings.ring_bytes
    assert session.input_buffered <= session.settings.input_buffer_bytes
    assert rss_growth < 32 * MIB
    assert max(latencies) < 0.1
    assert session.exit_status is None  # the child is blocked in its write, not dead

    # Acking resumes the child; all 50 MiB arrive, none lost, memory still bounded.
    controller.ack(controller.position)
    received = controller.position
    async with asyncio.timeout(30):
        while True:
            message = await controller.next(timeout=30)
            if not isinstance(message, Output):
                break
            assert message.data == b"x" * len(message.data)
            received = message.end
            controller.ack(message.end)
    assert received == total
    assert await session.wait_exit(timeout=10) == 0
    assert me.memory_info().rss - rss_before < 32 * MIB
    assert session.stats["pauses"] >= 1
    assert session.stats["paused_seconds"] > 0


async def test_slow_observer_resyncs_and_a_silent_one_is_dropped_without_pausing(
    spawn: SessionFactory, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="oven.pty._session")
    total = 4 * MIB
    session = await spawn(
        printer(total, then_wait=True),
        ring_bytes=256 * KIB,
        pause_high_bytes=128 * KIB,
        resume_low_bytes=64 * KIB,
        observer_timeout_s=0.5,
    )
    controller = session.attach(controlling=True)
    slow = session.attach(controlling=False)
    silent = session.attach(controlling=False)
    # The slow observer takes the first chunk, then nothing until the controller, which
    # renders everything promptly, has seen all of it.
    taking_first = asyncio.create_task(slow.next(timeout=5))
    got = await read_until(controller, lambda seen: len(seen) >= total, timeout=20)
    assert len(got) == total
    first = await taking_first
    assert isinstance(first, Output) and first.offset == 0
    assert session.ring_start > first.end  # the ring moved on past the slow observer
    resync = await slow.next(timeout=5)
    assert resync == Resync(session.ring_start, session.ring_start - first.end)
    after = await slow.next(timeout=5)
    assert isinstance(after, Output) and after.offset == resync.offset

    # The silent observer is behind and takes nothing: dropped after observer_timeout_s.
    await until(lambda: not silent.attached, timeout=5)
    with pytest.raises(ClientDetached, match="no progress"):
        await silent.next(timeout=1)
    assert slow.attached  # it made progress, so it stays

    stats = session.stats
    # Observers never pause the session: only the controller's own lag does. On a loaded
    # machine the controller's reader can fall behind by itself (one pause, beside three
    # suites and `stress --cpu 2`), so every pause must be the controller's, as the session
    # logs it, not none at all.
    lags = [int(found.group(1)) for record in caplog.records
            if (found := re.search(r"paused: controller (\d+) bytes behind", record.getMessage()))]
    assert len(lags) == stats["pauses"]
    assert all(lag > 128 * KIB for lag in lags), lags
    assert not session.paused
    assert stats["stalled_disconnects"] == 1
    assert stats["resyncs"] == 1
    assert stats["clients"] == 2


async def test_without_a_controller_output_flows_and_the_ring_bounds_memory(
    spawn: SessionFactory,
) -> None:
    total = 2 * MIB
    session = await spawn(printer(total), ring_bytes=256 * KIB, pause_high_bytes=128 * KIB,
                          resume_low_bytes=64 * KIB)  # fmt: skip
    assert await session.wait_exit(timeout=20) == 0
    await until(lambda: session.ring_end == total, timeout=10)
    assert session.ring_end - session.ring_start == 256 * KIB
    late = session.attach(controlling=False, from_offset=0)
    assert await late.next(timeout=1) == Resync(session.ring_start, session.ring_start)
    assert not session.paused
