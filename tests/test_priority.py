"""Captures and encodes are batch work: Chromium, its driver, ffmpeg, webpmux and img2webp run
niced, so
the HTTP loop and the actors get the CPU first on a busy box (a probe stays fast during a
burst)."""

from __future__ import annotations

import shutil
from pathlib import Path

import psutil

from tests.oven_process import StartOven
from tests.pipeline.grab_client import submit, wait_for_job


def _nice_shim(path: Path, record: Path, tool: str = "ffmpeg") -> Path:
    """A stand-in tool path that notes its own niceness, then runs the real tool (the encode
    is real; the tool lives too briefly to be sampled from outside reliably)."""
    path.write_text(f"#!/bin/sh\ncut -d' ' -f19 /proc/$$/stat >> {record}\n"
                    f"exec {shutil.which(tool)} \"$@\"\n")
    path.chmod(0o755)
    return path


def test_chromium_its_driver_and_ffmpeg_run_at_the_configured_niceness(
        start_oven: StartOven, tmp_path: Path) -> None:
    record = tmp_path / "ffmpeg-nice.txt"
    muxed = tmp_path / "webpmux-nice.txt"
    encoded = tmp_path / "img2webp-nice.txt"
    oven = start_oven({"browser": {"pages": 1, "nice": 7},
                       "encoder": {"nice": 5, "ffmpeg_path": str(_nice_shim(
                           tmp_path / "ffmpeg", record)), "webpmux_path": str(_nice_shim(
                           tmp_path / "webpmux", muxed, "webpmux")), "img2webp_path": str(
                           _nice_shim(tmp_path / "img2webp", encoded, "img2webp"))}})
    # A GIF is ffmpeg's; a WebP of the canvas piece's own frames is webpmux's; a WebP of JPEG
    # screenshots (an element's, so not the canvas's frames) is img2webp's.
    for fmt, extra in (("gif", {}), ("webp", {}), ("webp", {"selector": "canvas"})):
        job = submit(oven, piece="still", format=fmt, width=64, height=64, frames=2, **extra)
        assert wait_for_job(oven, job["id"])["state"] == "complete"

    assert record.read_text().split() == ["5"]
    assert muxed.read_text().split() == ["5"]
    assert encoded.read_text().split() == ["5"]
    serve = psutil.Process(oven.proc.pid)  # type: ignore[union-attr]
    assert serve.nice() == 0  # oven itself (its HTTP loop) keeps its priority
    browser_tree = [p for p in serve.children(recursive=True)
                    if p.name() not in ("ffmpeg", "sh")]
    names = {p.name() for p in browser_tree}
    assert any(n.startswith("node") for n in names), names  # Playwright's driver
    assert sum(n.startswith("chrom") for n in names) >= 1, names
    # Every thread of every process, since Linux keeps a nice value per thread.
    threads = {(p.name(), t.id): _thread_nice(p.pid, t.id)
               for p in browser_tree for t in p.threads()}
    assert len(threads) > len(browser_tree)
    assert set(threads.values()) <= {7, None}, threads  # None: the thread ended meanwhile


def _thread_nice(pid: int, tid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[16])  # field 19, counted after the name
