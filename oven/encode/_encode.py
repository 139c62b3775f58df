"""encode(): frames on disk in, one checked output file out, or an EncodeError saying why."""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid

from ._commands import build_command
from ._errors import EncodeError, EncodeTimeout
from ._request import EncodeRequest, EncodeResult
from ._run import INSTALL_HINT, ProcessRun, run_process
from ._settings import EncoderSettings

log = logging.getLogger(__name__)

_STDERR_LINES_IN_MESSAGE = 5


async def encode(request: EncodeRequest, settings: EncoderSettings) -> EncodeResult:
    """Encode `request.frames` into `request.out_path`.

    ffmpeg writes to a hidden partial file beside `out_path` that is renamed into place only
    after it is checked, so `out_path` is either complete or untouched; the partial file is
    removed on every failure, including timeout and cancellation.
    """
    fmt = request.format.value
    missing = [frame.name for frame in request.frames if not frame.is_file()]
    if missing:
        # image2 would stop at the first gap and exit 0 with a shorter animation.
        raise EncodeError(
            f"{fmt} encode: {len(missing)} frame file(s) missing, first {missing[0]!r}",
            format=fmt,
        )
    out_path = request.out_path.absolute()
    partial = out_path.with_name(f".{out_path.name}.{uuid.uuid4().hex[:12]}.partial")
    argv = build_command(request, settings, partial)
    log.debug("encoding %d frame(s) to %s: %s", len(request.frames), fmt, " ".join(argv),
              extra={"format": fmt, "out_path": str(out_path)})
    started = time.perf_counter()
    try:
        try:
            run = await run_process(
                argv, timeout_s=settings.timeout_s, stderr_tail_bytes=settings.stderr_tail_bytes
            )
        except (FileNotFoundError, PermissionError) as exc:
            raise EncodeError(
                f"{fmt} encode: cannot run ffmpeg at {settings.ffmpeg_path!r} ({exc}): "
                f"{INSTALL_HINT}",
                format=fmt,
            ) from exc
        _raise_for_failure(run, fmt, settings)
        size = partial.stat().st_size if partial.exists() else 0
        if size == 0:
            raise EncodeError(
                f"{fmt} encode: ffmpeg exited 0 but wrote no output{_last_lines(run)}",
                format=fmt, returncode=0, stderr=run.stderr_text,
            )
        os.replace(partial, out_path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    seconds = time.perf_counter() - started
    log.debug("encoded %s: %d bytes in %.3f s", out_path.name, size, seconds,
              extra={"format": fmt, "out_path": str(out_path)})
    return EncodeResult(
        path=out_path,
        size=size,
        content_type=request.format.content_type,
        frames=1 if request.still else len(request.frames),
        seconds=seconds,
    )


def _raise_for_failure(run: ProcessRun, fmt: str, settings: EncoderSettings) -> None:
    if run.timed_out:
        raise EncodeTimeout(
            f"{fmt} encode: ffmpeg ran past {settings.timeout_s:g} s and was killed"
            f"{_last_lines(run)}",
            format=fmt, stderr=run.stderr_text,
        )
    code = run.returncode
    if code is None or code == 0:
        return
    if code < 0:
        # Killed by a signal from outside (OOM killer, an operator): the input may be fine.
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        raise EncodeError(
            f"{fmt} encode: ffmpeg was killed by {name}{_last_lines(run)}",
            format=fmt, returncode=code, stderr=run.stderr_text, transient=True,
        )
    raise EncodeError(
        f"{fmt} encode: ffmpeg exited with code {code}{_last_lines(run)}",
        format=fmt, returncode=code, stderr=run.stderr_text, transient=False,
    )


def _last_lines(run: ProcessRun) -> str:
    lines = [line for line in run.stderr_text.splitlines() if line.strip()]
    if not lines:
        return ""
    return ": " + " | ".join(lines[-_STDERR_LINES_IN_MESSAGE:])

