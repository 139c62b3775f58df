"""Archive bombs through a real `oven serve`: headers and entries count, memory stays flat.

Each case is a small upload whose *headers* (GNU long names, pax records), entry count or ZIP
central directory is the bomb. The service must answer a 4xx JSON error and its peak RSS
(VmHWM of the `oven serve` process, reset just before the upload) must barely move.
"""

from __future__ import annotations

import functools
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.oven_process import OvenProcess

from .bake_kit import header_bomb, many_directories, pax_chain, zip_of_many_entries

# Far below what one inflated header costs (the claims are 80 MB), far above the noise of a
# request: allocator slack, a few MiB of upload in flight.
MAX_RSS_GROWTH = 50 * 1024 * 1024
CLAIM = 80 * 1024 * 1024

BOMBS: dict[str, tuple[Callable[[], bytes], int, str]] = {
    "gnu_long_name_xz": (lambda: header_bomb(tarfile.GNUTYPE_LONGNAME, CLAIM, "xz"),
                         413, "header_too_large"),
    "gnu_long_link_gz": (lambda: header_bomb(tarfile.GNUTYPE_LONGLINK, CLAIM, "gz"),
                         413, "header_too_large"),
    "pax_path_bz2": (lambda: header_bomb(tarfile.XHDTYPE, CLAIM, "bz2"),
                     413, "header_too_large"),
    "pax_global_xz": (lambda: header_bomb(tarfile.XGLTYPE, CLAIM, "xz"),
                      413, "header_too_large"),
    "pax_chain_gz": (lambda: pax_chain(5000), 413, "header_too_large"),
    "many_directories_gz": (lambda: many_directories(200_000), 422, "too_many_members"),
    "zip_of_many_entries": (lambda: zip_of_many_entries(60_000), 422, "too_many_members"),
}


@functools.cache
def bomb(case: str) -> bytes:
    return BOMBS[case][0]()


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@pytest.mark.parametrize("case", sorted(BOMBS))
def test_an_archive_bomb_in_its_headers_or_entries_is_refused_without_inflating_it(
        bake_oven: OvenProcess, case: str) -> None:
    _, status, code = BOMBS[case]
    data = bomb(case)
    assert len(data) < 3 * 1024 * 1024  # under bakes.max_archive_bytes: the upload is fine
    assert bake_oven.proc is not None
    pid = bake_oven.proc.pid
    start_kib = rss_kib(pid, "VmRSS")
    # "5" resets the peak RSS (VmHWM) to the current RSS: what follows is this upload's peak.
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    started = time.monotonic()
    response = httpx.post(f"{bake_oven.url}/bakes", files={"archive": ("tape.tar", data)},
                          timeout=120)
    took = time.monotonic() - started
    growth = (rss_kib(pid, "VmHWM") - start_kib) * 1024
    assert response.status_code == status, response.text[:500]
    error = response.json()["error"]
    assert error["code"] == code, error
    assert len(error["message"]) < 400, "a hostile name is echoed back whole"
    assert growth < MAX_RSS_GROWTH, f"peak RSS grew {growth / 2**20:.0f} MiB for {case}"
    assert took < 20, f"{case} took {took:.1f} s to refuse"
    assert httpx.get(f"{bake_oven.url}/health", timeout=5).status_code == 200
