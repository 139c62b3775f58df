"""The output ring against a plain bytes reference, across growth and wrap-around."""

from __future__ import annotations

import os
import random

import pytest

from oven.pty._ring import OutputRing


def test_ring_keeps_exactly_the_last_capacity_bytes_at_their_offsets() -> None:
    rng = random.Random(7)
    ring = OutputRing(1000)
    everything = b""
    for _ in range(500):
        chunk = os.urandom(rng.choice([0, 1, 7, 300, 999, 1000, 1001, 2500]))
        ring.append(chunk)
        everything += chunk
        assert ring.end == len(everything)
        assert ring.start == max(0, len(everything) - 1000)
        assert len(ring) <= 1000
        offset = rng.randint(ring.start, ring.end)
        limit = rng.randint(1, 1200)
        assert ring.read(offset, limit) == everything[offset : offset + limit]
    with pytest.raises(IndexError):
        ring.read(ring.start - 1, 10)
