"""Baking a tape: numbered PNG frames (+ an optional WAV soundtrack) into one H.264/AAC MP4."""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ._commands import _GLOBAL, fps_arg, upscale_filters
from ._encode import _raise_for_failure
from ._errors import EncodeError
from ._format import Format
from ._request import EncodeResult
from ._run import INSTALL_HINT, run_process
from ._settings import EncoderSettings

log = logging.getLogger(__name__)


class BakeEncodeRequest(BaseModel):
    """Frames `frame-%05d.png` from `first_index` in `frames_dir`, checked by the bake intake."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    frames_dir: Path
    first_index: int = Field(0, ge=0)
    frames: int = Field(ge=1)
    fps: float = Field(gt=0, le=240)
    soundtrack: Path | None = None
    out_path: Path
    scale: int = Field(1, ge=1, le=8, description="Nearest-neighbour upscale factor.")
    audio_bitrate: str = Field("160k", pattern=r"^[1-9][0-9]{1,3}k$")
    timeout_s: float = Field(300.0, gt=0, le=7200)


def bake_command(request: BakeEncodeRequest, settings: EncoderSettings,
                 out_path: Path) -> list[str]:
    """The ffmpeg argv of a bake: image2 frames, optional WAV, libx264 yuv420p (+AAC), faststart."""
    pattern = str(request.frames_dir.absolute()).replace("%", "%%") + "/frame-%05d.png"
    audio_in: list[str] = []
    audio_out: list[str] = []
    if request.soundtrack is not None:
        audio_in = ["-i", str(request.soundtrack.absolute())]
        audio_out = ["-map", "1:a:0", "-c:a", "aac", "-b:a", request.audio_bitrate]
    # yuv420p needs even width and height: pad one black row/column rather than resample.
    filters = [*upscale_filters(request.scale), "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
    return [
        settings.ffmpeg_path,
        *_GLOBAL,
        "-f", "image2",
        "-pattern_type", "sequence",
        "-framerate", fps_arg(request.fps),
        "-start_number", str(request.first_index),
        "-i", pattern,
        *audio_in,
        "-map", "0:v:0",
        "-vf", ",".join(filters),
        "-frames:v", str(request.frames),
        "-c:v", "libx264",
        "-preset", settings.mp4_preset,
        "-crf", str(settings.mp4_crf),
        "-pix_fmt", "yuv420p",
        *audio_out,
        # moov before mdat so a browser can start playing before the whole file arrives.
        "-movflags", "+faststart",
        "-f", "mp4",
        str(out_path.absolute()),
    ]  # fmt: skip


async def encode_bake(request: BakeEncodeRequest, settings: EncoderSettings) -> EncodeResult:
    """Run the bake's ffmpeg; `out_path` is complete or untouched (partial file renamed in)."""
    # The bake's own time limit, not the grab encoder's: a long tape takes longer than a grab.
    settings = settings.model_copy(update={"timeout_s": request.timeout_s})
    out_path = request.out_path.absolute()
    partial = out_path.with_name(f".{out_path.name}.{uuid.uuid4().hex[:12]}.partial")
    argv = bake_command(request, settings, partial)
    log.debug("baking %d frame(s): %s", request.frames, " ".join(argv))
    started = time.perf_counter()
    try:
        try:
            run = await run_process(argv, timeout_s=settings.timeout_s,
                                    stderr_tail_bytes=settings.stderr_tail_bytes)
        except (FileNotFoundError, PermissionError) as exc:
            raise EncodeError(f"mp4 bake: cannot run ffmpeg at {settings.ffmpeg_path!r} "
                              f"({exc}): {INSTALL_HINT}", format="mp4") from exc
        _raise_for_failure(run, "mp4 bake", settings)
        size = partial.stat().st_size if partial.exists() else 0
        if size == 0:
            raise EncodeError("mp4 bake: ffmpeg exited 0 but wrote no output", format="mp4",
                              returncode=0, stderr=run.stderr_text)
        os.replace(partial, out_path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return EncodeResult(path=out_path, size=size, content_type=Format.MP4.content_type,
                        frames=request.frames, seconds=time.perf_counter() - started)
