"""encode(): frames on disk in, one checked output file out, or an EncodeError saying why."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import time
import uuid
from pathlib import Path

from ._as_is import is_valid_as_is, may_be_taken_as_is
from ._commands import build_command
from ._errors import EncodeError, EncodeTimeout
from ._format import Format
from ._img2webp import img2webp_command, may_use_img2webp
from ._request import EncodeRequest, EncodeResult
from ._run import INSTALL_HINT, ProcessRun, run_process
from ._settings import EncoderSettings
from ._webpmux import WEBP_FRAME_SUFFIX, is_webp, mux_command

log = logging.getLogger(__name__)

_STDERR_LINES_IN_MESSAGE = 5


async def encode(request: EncodeRequest, settings: EncoderSettings) -> EncodeResult:
    """Encode `request.frames` into `request.out_path`.

    A still whose one frame already is a valid file of the format asked for, at its size, is
    copied as it is: no ffmpeg, no second encode. Either way the output is written to a hidden
    partial file beside `out_path` that is renamed into place only after it is checked, so
    `out_path` is either complete or untouched; the partial file is removed on every failure,
    including timeout and cancellation.
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
    started = time.perf_counter()
    if may_be_taken_as_is(request) and await _copied_as_is(request, partial):
        return _done(request, out_path, partial, started, "as it is")
    if may_be_muxed(request):
        await _muxed(request, settings, partial)
        return _done(request, out_path, partial, started, "by webpmux")
    if may_use_img2webp(request, settings):
        await _webp_tool(request, settings, partial, "img2webp",
                         img2webp_command(request, settings, partial))
        return _done(request, out_path, partial, started, "by img2webp")
    argv = build_command(request, settings, partial)
    log.debug("encoding %d frame(s) to %s: %s", len(request.frames), fmt, " ".join(argv),
              extra={"format": fmt, "out_path": str(out_path)})
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
    except BaseException:
        _remove(partial)
        raise
    return _done(request, out_path, partial, started, "by ffmpeg")


def may_be_muxed(request: EncodeRequest) -> bool:
    """WebP frames for an animated WebP at their own size: assembled, not encoded again."""
    return (request.format is Format.WEBP and not request.still and request.upscale == 1
            and request.frames[0].suffix == WEBP_FRAME_SUFFIX)


async def _muxed(request: EncodeRequest, settings: EncoderSettings, partial: Path) -> None:
    try:
        argv = await asyncio.to_thread(mux_command, request, settings, partial)
    except BaseException:
        _remove(partial)
        raise
    await _webp_tool(request, settings, partial, "webpmux", argv)


async def _webp_tool(request: EncodeRequest, settings: EncoderSettings, partial: Path,
                     tool: str, argv: list[str]) -> None:
    """Run one of libwebp's tools (webpmux, img2webp) to write `partial`, checked whole."""
    fmt = request.format.value
    try:
        try:
            run = await run_process(argv, timeout_s=settings.timeout_s,
                                    stderr_tail_bytes=settings.stderr_tail_bytes)
        except (FileNotFoundError, PermissionError) as exc:
            raise EncodeError(f"{fmt} encode: cannot run {tool} at {argv[0]!r} ({exc}): "
                              "install Debian's webp (apt-get install webp)",
                              format=fmt) from exc
        if (run.returncode or 0) > 0:
            # webpmux says only "Error writing file", img2webp nothing at all.
            _raise_if_disk_full(request, partial, fmt)
        _raise_for_failure(run, fmt, settings, tool=tool)
        if not partial.exists() or not is_webp(partial.read_bytes()):
            raise EncodeError(f"{fmt} encode: {tool} wrote no whole WebP file"
                              f"{_last_lines(run)}", format=fmt, stderr=run.stderr_text)
    except BaseException:
        _remove(partial)
        raise


def _raise_if_disk_full(request: EncodeRequest, partial: Path, fmt: str) -> None:
    """What ffmpeg's own write would say, when the dir has less room than the frames the tool
    was assembling or encoding (about its output's size)."""
    needed = sum(frame.stat().st_size for frame in request.frames)
    free = shutil.disk_usage(partial.parent).free
    if free < needed:
        raise EncodeError(f"{fmt} encode: cannot write {partial.name}: No space left on device "
                          f"({free} bytes free, the animation needs ~{needed})", format=fmt)


async def _copied_as_is(request: EncodeRequest, partial: Path) -> bool:
    # In a thread: checking and copying a large frame would hold up the actor's other messages.
    copying = asyncio.ensure_future(asyncio.to_thread(_copy_if_valid, request, partial))
    try:
        return await asyncio.shield(copying)
    except BaseException:
        # Cancelled: the thread cannot be stopped, so what it writes is removed once it is done.
        copying.add_done_callback(lambda done: _discard(done, partial))
        raise


def _discard(copying: asyncio.Future[bool], partial: Path) -> None:
    if not copying.cancelled():
        copying.exception()  # retrieved: nobody is waiting for it any more
    _remove(partial)


def _copy_if_valid(request: EncodeRequest, partial: Path) -> bool:
    frame = request.frames[0]
    if not is_valid_as_is(frame, request.format):
        return False
    fmt = request.format.value
    try:
        # Copied, not moved: the frames are the caller's, and a retried encode reads them again.
        shutil.copyfile(frame, partial)
    except OSError as exc:
        _remove(partial)
        # As ffmpeg's own write failing would be (e.g. a full disk): the encode's error.
        raise EncodeError(f"{fmt} encode: cannot write {partial.name}: {exc}",
                          format=fmt) from exc
    except BaseException:
        _remove(partial)
        raise
    return True


def _remove(partial: Path) -> None:
    # Never written, or its dir is not one (a file in the way): nothing to remove, and the
    # error that brought us here is the one to report.
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        partial.unlink()


def _done(request: EncodeRequest, out_path: Path, partial: Path, started: float,
          how: str) -> EncodeResult:
    try:
        size = partial.stat().st_size
        os.replace(partial, out_path)
    except BaseException:
        _remove(partial)
        raise
    seconds = time.perf_counter() - started
    log.debug("encoded %s %s: %d bytes in %.3f s", out_path.name, how, size, seconds,
              extra={"format": request.format.value, "out_path": str(out_path)})
    return EncodeResult(
        path=out_path,
        size=size,
        content_type=request.format.content_type,
        frames=1 if request.still else len(request.frames),
        seconds=seconds,
    )


def _raise_for_failure(run: ProcessRun, fmt: str, settings: EncoderSettings,
                       tool: str = "ffmpeg") -> None:
    if run.timed_out:
        raise EncodeTimeout(
            f"{fmt} encode: {tool} ran past {settings.timeout_s:g} s and was killed"
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
            f"{fmt} encode: {tool} was killed by {name}{_last_lines(run)}",
            format=fmt, returncode=code, stderr=run.stderr_text, transient=True,
        )
    raise EncodeError(
        f"{fmt} encode: {tool} exited with code {code}{_last_lines(run)}",
        format=fmt, returncode=code, stderr=run.stderr_text, transient=False,
    )


def _last_lines(run: ProcessRun) -> str:
    lines = [line for line in run.stderr_text.splitlines() if line.strip()]
    if not lines:
        return ""
    return ": " + " | ".join(lines[-_STDERR_LINES_IN_MESSAGE:])

