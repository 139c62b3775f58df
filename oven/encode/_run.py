"""Running ffmpeg: its own process group, a bounded stderr tail, kill-and-reap on timeout/cancel."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ._format import required_encoders
from ._settings import EncoderSettings

log = logging.getLogger(__name__)

INSTALL_HINT = "install Debian's ffmpeg (apt-get install ffmpeg)"

_live_lock = threading.Lock()
_live_pids: set[int] = set()


def running_pids() -> frozenset[int]:
    """Pids of ffmpeg processes started here and not yet reaped (each leads its own group).

    Safe to call from any thread: MemoryWatch samples these from its own thread.
    """
    with _live_lock:
        return frozenset(_live_pids)


@dataclass(frozen=True, slots=True)
class ProcessRun:
    returncode: int | None  # None when timed out
    stdout: bytes
    stderr_tail: bytes
    timed_out: bool
    seconds: float

    @property
    def stderr_text(self) -> str:
        return self.stderr_tail.decode("utf-8", "replace")


async def run_process(
    argv: Sequence[str],
    *,
    timeout_s: float,
    stderr_tail_bytes: int,
    capture_stdout: bool = False,
) -> ProcessRun:
    """Run argv to completion or until `timeout_s`, keeping the last `stderr_tail_bytes` of stderr.

    On timeout the process group is killed and reaped and a run with `timed_out` is returned.
    On cancellation the group is killed and reaped and CancelledError propagates.
    OSError (e.g. FileNotFoundError for a missing executable) propagates from the start.
    """
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        # ffmpeg leads its own process group so a kill reaches everything it started and a
        # Ctrl-C on our terminal does not hit it behind our back.
        start_new_session=True,
    )
    with _live_lock:
        _live_pids.add(proc.pid)
    stderr_tail = bytearray()
    stdout = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            readers = [_read_tail(proc.stderr, stderr_tail, stderr_tail_bytes)]
            if capture_stdout:
                readers.append(_read_tail(proc.stdout, stdout, 1 << 20))
            await asyncio.gather(*readers)
            returncode = await proc.wait()
    except TimeoutError:
        log.info("ffmpeg pid %d ran past %.1f s; killing its process group", proc.pid, timeout_s)
        await _kill_group(proc)
        return ProcessRun(None, bytes(stdout), bytes(stderr_tail), True,
                          time.perf_counter() - started)
    except BaseException:
        # Cancelled (or failed) while ffmpeg runs: nobody will read its output, so it must not
        # outlive us burning a core.
        await _kill_group(proc)
        raise
    finally:
        with _live_lock:
            _live_pids.discard(proc.pid)
    return ProcessRun(returncode, bytes(stdout), bytes(stderr_tail), False,
                      time.perf_counter() - started)


async def _read_tail(stream: asyncio.StreamReader | None, tail: bytearray, limit: int) -> None:
    # Drain continuously so ffmpeg never blocks on a full pipe, but keep only a bounded tail.
    assert stream is not None
    while chunk := await stream.read(65536):
        tail += chunk
        if len(tail) > limit:
            del tail[:-limit]


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    # SIGKILL to the whole group, not just the leader: a wrapper script or anything ffmpeg
    # spawned would otherwise be orphaned. The group id stays reserved while members live.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    # Reap so no zombie is left; shielded so a second cancel cannot interrupt the reap.
    await asyncio.shield(proc.wait())


async def ffmpeg_version(settings: EncoderSettings) -> str:
    """First line of `ffmpeg -version`, e.g. 'ffmpeg version 5.1.6-0+deb12u1 ...'."""
    run = await run_process(
        [settings.ffmpeg_path, "-hide_banner", "-version"],
        timeout_s=min(settings.timeout_s, 10.0),
        stderr_tail_bytes=settings.stderr_tail_bytes,
        capture_stdout=True,
    )
    if run.timed_out or run.returncode != 0:
        raise RuntimeError(f"{settings.ffmpeg_path} -version failed: {run.stderr_text.strip()}")
    return run.stdout.decode("utf-8", "replace").splitlines()[0].strip()


def check_ffmpeg(settings: EncoderSettings) -> str | None:
    """None when ffmpeg is usable for every format, else a message a person can act on."""
    path = settings.ffmpeg_path
    if shutil.which(path) is None:
        return f"ffmpeg not found at {path!r}: {INSTALL_HINT}"
    try:
        done = subprocess.run(
            [path, "-hide_banner", "-encoders"], capture_output=True, timeout=10, check=False
        )
    except subprocess.TimeoutExpired:
        return f"ffmpeg at {path!r} did not answer `-encoders` within 10 s"
    except OSError as exc:
        return f"ffmpeg at {path!r} cannot be run ({exc}): {INSTALL_HINT}"
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip()[-300:]
        return f"ffmpeg at {path!r} failed with exit code {done.returncode}: {tail}"
    listed = {
        line.split()[1]
        for line in done.stdout.decode("utf-8", "replace").splitlines()
        if len(line.split()) > 1
    }
    # Debian's ffmpeg 5.1 has every encoder oven's formats need.
    missing = [name for name in required_encoders() if name not in listed]
    if missing:
        return f"ffmpeg at {path!r} lacks encoders {', '.join(missing)}: {INSTALL_HINT}"
    return None
