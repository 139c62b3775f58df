"""Pastes through write(): byte-exact in raw mode, every byte echoed in cooked mode, and what a
cooked tty does with a line longer than 4095 characters."""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import time
from pathlib import Path

from oven.pty import PtyProfile

from .conftest import (
    SessionFactory,
    echo_latencies,
    interleaves_two_copies,
    raw_consumer,
    read_until,
)

MIB = 1024 * 1024
FRAME = 64 * 1024
PRINTABLE = bytes(32 + i % 95 for i in range(256))  # byte -> printable ASCII, for translate()
COOKED_CAT = PtyProfile(command=["cat"])


async def paste(session, data: bytes, frame: int = FRAME) -> None:
    for start in range(0, len(data), frame):
        await session.write(data[start : start + frame])


async def test_random_10_mib_paste_reaches_a_raw_consumer_byte_exact(
    spawn: SessionFactory, tmp_path: Path
) -> None:
    data = os.urandom(10 * MIB)
    target = tmp_path / "paste.bin"
    session = await spawn(raw_consumer(len(data), target))
    client = session.attach(controlling=True)
    # A second session's keystroke echo is timed while the paste runs.
    typist = await spawn(COOKED_CAT)
    typist_client = typist.attach(controlling=True)
    pasting = asyncio.create_task(paste(session, data))
    latencies: list[float] = []
    started = time.perf_counter()
    async with asyncio.timeout(30):
        while not pasting.done():
            latencies += await echo_latencies(typist, typist_client, 1)
            # One key in flight at a time is a fast typist, not a second flood: the next key
            # goes as soon as the last echo is back, so a quiet machine, where the paste is
            # quickest, still yields enough samples for a p99.
            await asyncio.sleep(0)
        await pasting
        out = await read_until(client, lambda seen: b"\n" in seen, timeout=30)
        elapsed = time.perf_counter() - started
        assert await session.wait_exit(timeout=10) == 0
    assert out == f"done {len(data)}\n".encode()
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert session.stats["bytes_in"] == len(data)
    # Under 100 samples the "p99" would be the max; fewer means the paste outran the typist.
    assert len(latencies) >= 100, len(latencies)
    latencies.sort()
    p99 = latencies[math.ceil(len(latencies) * 0.99) - 1]
    print(
        f"\nraw paste: {len(data) / elapsed / 1e6:.1f} MB/s; echo in a second session during "
        f"it: n={len(latencies)} median {latencies[len(latencies) // 2] * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms"
    )
    # p99, not max: one echo needs a kernel worker that the paste keeps busy on 2 vCPUs.
    # README measured 1.9 ms; 100 ms is the bound kept for a loaded 2-core machine.
    assert p99 < 0.1


async def test_10_mib_paste_into_cooked_cat_echoes_every_byte_twice(spawn: SessionFactory) -> None:
    # Printable lines shorter than 4000 characters: what a cooked tty takes without cutting.
    noise = os.urandom(10 * MIB).translate(PRINTABLE)
    lengths = memoryview(os.urandom(len(noise) // 1000))
    lines, at = [], 0
    for length_byte in lengths:
        if at >= len(noise):
            break
        size = 1 + length_byte * 3999 // 255
        lines.append(noise[at : at + size])
        at += size
    data = b"\n".join(lines) + b"\n"
    expected = data.replace(b"\n", b"\r\n")  # ONLCR, on both the echo and cat's copy
    session = await spawn(COOKED_CAT)
    client = session.attach(controlling=True)
    started = time.perf_counter()
    async with asyncio.timeout(45):
        pasting = asyncio.create_task(paste(session, data))
        out = await read_until(client, lambda seen: len(seen) >= 2 * len(expected), timeout=45)
        await pasting
    elapsed = time.perf_counter() - started
    print(f"\ncooked cat with echo: {len(data) / elapsed / 1e6:.1f} MB/s of paste")
    assert len(out) == 2 * len(expected)
    # The echo and cat's copy interleave wherever the kernel switched between them.
    assert interleaves_two_copies(out, expected)


async def test_cooked_tty_keeps_4095_characters_of_a_5000_character_line(
    spawn: SessionFactory,
) -> None:
    session = await spawn(COOKED_CAT)
    client = session.attach(controlling=True)
    line = bytes(ord("a") + i % 26 for i in range(5000))
    await session.write(line + b"\n")
    out = await read_until(client, lambda seen: seen.count(b"\r\n") >= 2, timeout=10)
    echo, copy, _ = out.split(b"\r\n", 2)
    # N_TTY echoes every character, so the whole line shows on screen, but its line buffer
    # holds 4096 bytes (one kept for the newline) and it drops the rest without a word:
    # cat receives the first 4095 characters only.
    assert echo == line
    assert copy == line[:4095]


async def test_bracketed_paste_reaches_a_raw_consumer_unchanged(
    spawn: SessionFactory, tmp_path: Path
) -> None:
    body = b"line one\nline two\r\n\ttabbed \x1b[31mred\x1b[0m\n" * 2000
    data = b"\x1b[200~" + body + b"\x1b[201~"
    target = tmp_path / "bracketed.bin"
    session = await spawn(raw_consumer(len(data), target))
    await paste(session, data)
    assert await session.wait_exit(timeout=10) == 0
    assert target.read_bytes() == data
