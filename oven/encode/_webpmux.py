"""Animated WebP from WebP frames as they are: webpmux writes the container, nothing is re-encoded.

The frames are the piece's canvas pictures (see oven.capture._canvas), each a whole opaque
picture, so every frame is placed at 0,0 and replaces the one before (no blending, no
disposal). A run of identical frames (a piece that paused) becomes one frame that stays up
for their summed time, which is what libwebp_anim's frame deltas would have saved.
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
    runs: list[tuple[Path, int]] = []
    last = b""
    for frame, ms in zip(request.frames, durations_ms(len(request.frames), request.fps),
                         strict=True):
        digest = hashlib.blake2b(frame.read_bytes(), digest_size=16).digest()
        if runs and digest == last:
            runs[-1] = (runs[-1][0], runs[-1][1] + ms)
        else:
            runs.append((frame, ms))
        last = digest
    if len(runs) == 1 and len(request.frames) > 1:
        # One picture throughout: still two frames, or webpmux writes a still WebP, and the
        # file would no longer be an animation of the length asked for.
        last_ms = durations_ms(len(request.frames), request.fps)[-1]
        runs = [(runs[0][0], runs[0][1] - last_ms), (request.frames[-1], last_ms)]
    argv = [settings.webpmux_path]
    for frame, ms in runs:
        argv += ["-frame", str(frame.absolute()), f"+{max(1, ms)}+0+0+0-b"]
    return [*argv, "-loop", "0", "-o", str(out_path)]
