"""A full disk under the job temp dir: the job fails with a clear error, the service stays up.

The job dir (`<data_dir>/jobs`) is a 1 MiB tmpfs mounted for the test. That is faithful: the
real writers (frame files, ffmpeg's output) get the real ENOSPC from a real filesystem, exactly as
on a full disk. RLIMIT_FSIZE would not be: it raises SIGXFSZ/EFBIG per file and also hits the
SQLite store and the logs, which a full job dir does not. Mounting needs root (CAP_SYS_ADMIN);
without it the test skips and says so.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.oven_process import StartOven
from tests.pipeline.grab_client import ffmpegs, submit, wait_for_job

JOB_DIR_BYTES = 1024 * 1024


@pytest.fixture
def full_job_dir(tmp_path: Path) -> Iterator[Path]:
    """`<workdir>/data/jobs` as a tiny tmpfs; requested before start_oven, so unmounted after."""
    jobs = tmp_path / "oven-0" / "data" / "jobs"
    jobs.mkdir(parents=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount(8) here to make a size-limited tmpfs")
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={JOB_DIR_BYTES}", "tmpfs",
                            str(jobs)], capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here (needs root): {mount.stderr.strip()}")
    try:
        yield jobs
    finally:
        subprocess.run(["umount", "--lazy", str(jobs)], check=True)


def test_a_full_job_dir_fails_the_job_with_a_clear_error_and_the_service_stays_up(
        full_job_dir: Path, start_oven: StartOven) -> None:
    oven = start_oven({}, workdir=full_job_dir.parent.parent)
    # 60 noisy 640x360 frames (canvas WebP, ~13 KB each) and the animation they make are more
    # than the 1 MiB job dir holds: it fills part-way through.
    accepted = submit(oven, piece="anim", format="webp", width=640, height=360, frames=60,
                      fps=20, clock="virtual")
    view = wait_for_job(oven, accepted["id"], timeout=120)
    assert view["state"] == "failed", view
    assert "No space left on device" in view["error"], view
    assert ffmpegs(oven) == []
    assert list(full_job_dir.iterdir()) == []  # the failed job's temp dir was cleaned up

    assert httpx.get(f"{oven.url}/health", timeout=5).status_code == 200
    # A grab that fits still works: the fault was the job's, not the service's.
    small = submit(oven, piece="still", format="png", width=160, height=90)
    assert wait_for_job(oven, small["id"], timeout=60)["state"] == "complete"
