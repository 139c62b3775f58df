"""Animated WebP from WebP frames as they are: webpmux writes the container, nothing is re-encoded.

The frames are the piece's canvas pictures (see oven.capture._canvas): the first whole, each
later one the box of the canvas that changed, placed at its offset, replacing the pixels of
its box (no blending) and leaving the rest as they were (no disposal). A run of identical
frames (a piece that paused) becomes one frame that stays up for their summed time.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import struct
from pathlib import Path

from ._request import EncodeRequest
from ._settings import EncoderSettings

WEBP_FRAME_SUFFIX = ".webp"


@functools.cache
def webpmux_found(path: str) -> bool:
    """Whether the webpmux executable is there (looked up once per path)."""
    return shutil.which(path) is not None


def is_webp(data: bytes) -> bool:
    """A whole RIFF/WEBP file: its header, and a RIFF size that is the file's."""
    return (len(data) >= 20 and data[:4] == b"RIFF" and data[8:12] == b"WEBP"
            and struct.unpack("<I", data[4:8])[0] + 8 == len(data))


def durations_ms(frames: int, fps: float) -> list[int]:
    """Each frame's time on screen in whole ms, rounded on the running total so that the
    animation lasts frames/fps to the ms (3 frames at 30 fps: 33, 34, 33)."""
    return [round((k + 1) * 1000 / fps) - round(k * 1000 / fps) for k in range(frames)]


def mux_command(request: EncodeRequest, settings: EncoderSettings, out_path: Path) -> list[str]:
    """webpmux's argv for the request's frames, identical neighbours merged into one."""
    offsets = request.offsets or [(0, 0)] * len(request.frames)
    runs: list[tuple[Path, tuple[int, int], int]] = []
    last = b""
    for frame, offset, ms in zip(request.frames, offsets,
                                 durations_ms(len(request.frames), request.fps), strict=True):
        digest = hashlib.blake2b(frame.read_bytes(), digest_size=16).digest()
        if runs and digest == last and offset == runs[-1][1]:
            runs[-1] = (runs[-1][0], offset, runs[-1][2] + ms)
        else:
            runs.append((frame, offset, ms))
        last = digest
    if len(runs) == 1 and len(request.frames) > 1:
        # One picture throughout: still two frames, or webpmux writes a still WebP, and the
        # file would no longer be an animation of the length asked for.
        last_ms = durations_ms(len(request.frames), request.fps)[-1]
        first, offset, ms = runs[0]
        runs = [(first, offset, ms - last_ms), (request.frames[-1], offsets[-1], last_ms)]
    argv = [settings.webpmux_path]
    for frame, (x, y), ms in runs:
        # Dispose none, no blend: a frame replaces the pixels of its box, the rest stay.
        argv += ["-frame", str(frame.absolute()), f"+{max(1, ms)}+{x}+{y}+0-b"]
    return [*argv, "-loop", "0", "-o", str(out_path)]
