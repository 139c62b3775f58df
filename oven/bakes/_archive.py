"""Unpacking a frame archive (ZIP or tar) safely: every entry checked before and while it is read.

Nothing in the archive chooses a path on disk: a member is written to `dest / <its base name>`
only after its name, type, declared size and compression ratio passed, and its bytes are counted
while they stream, so a header that lies about its size cannot write more than the limits allow.
Headers are input too: tar header bytes and ZIP directory entries count against the limits
(`_tar`, `_zip`). Blocking code that ends itself at `bakes.check_timeout_s`; callers run it in
a worker thread.
"""

from __future__ import annotations

import json
import time
import wave
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from oven.bakes._errors import BakeRefused
from oven.bakes._members import SOUNDTRACK, TIMING, Tally
from oven.bakes._settings import BakeSettings
from oven.bakes._tar import is_tar, unpack_tar
from oven.bakes._zip import unpack_zip

_TIMING_MAX_BYTES = 1024 * 1024


@dataclass
class Tape:
    """What an archive held, unpacked and checked, ready to encode."""

    dir: Path
    frames: int
    first_index: int
    width: int
    height: int
    soundtrack: Path | None = None
    audio_seconds: float | None = None
    durations_ms: list[float] | None = None
    unpacked_bytes: int = 0

    def frame_path(self, offset: int) -> Path:
        return self.dir / f"frame-{self.first_index + offset:05d}.png"


def unpack(archive: Path, dest: Path, settings: BakeSettings) -> Tape:
    """Check and unpack `archive` into `dest` (created); BakeRefused says what was wrong.

    Takes at most about `settings.check_timeout_s`, counted from this call.
    """
    deadline = time.monotonic() + settings.check_timeout_s
    dest.mkdir(parents=True, exist_ok=True)
    with archive.open("rb") as f:
        head = f.read(4)
    tally = Tally(settings, max(1, archive.stat().st_size), deadline)
    if head in (b"PK\x03\x04", b"PK\x05\x06"):
        unpack_zip(archive, dest, tally)
    elif is_tar(archive):
        unpack_tar(archive, dest, tally)
    else:
        raise BakeRefused("archive: not a ZIP or tar file (looked at its first bytes, not its "
                          "name)", code="not_an_archive")
    return _tape(dest, tally)


def _tape(dest: Path, tally: Tally) -> Tape:
    if not tally.frames:
        raise BakeRefused("archive: no frame-NNNNN.png frames in it", code="no_frames")
    indexes = sorted(tally.frames)
    first = indexes[0]
    for expected, index in enumerate(indexes, start=first):
        if index != expected:
            raise BakeRefused(f"frames: frame-{expected:05d}.png is missing (frames must be "
                              "numbered without gaps)", code="frame_gap")
    for index in indexes:
        tally.check_time()
        _verify_png(dest / tally.frames[index])
    assert tally.size is not None
    tape = Tape(dir=dest, frames=len(indexes), first_index=first, width=tally.size[0],
                height=tally.size[1], unpacked_bytes=tally.total)
    if SOUNDTRACK in tally.names:
        tape.soundtrack = dest / SOUNDTRACK
        tape.audio_seconds = wav_seconds(tape.soundtrack)
    if TIMING in tally.names:
        tape.durations_ms = read_timing(dest / TIMING, tape.frames)
    return tape


def _verify_png(path: Path) -> None:
    # Chunk CRCs and structure without decoding pixels: a truncated frame is refused here, with
    # its name, instead of failing ffmpeg later.
    try:
        with Image.open(path) as image:
            if image.format != "PNG":
                raise BakeRefused(f"member {path.name!r}: not a PNG", code="not_png")
            image.verify()
    except BakeRefused:
        raise
    except Exception as exc:
        raise BakeRefused(f"member {path.name!r}: damaged PNG ({exc})", code="not_png") from None


def wav_seconds(path: Path) -> float:
    try:
        with wave.open(str(path), "rb") as wav:
            rate, count = wav.getframerate(), wav.getnframes()
    except (wave.Error, EOFError, OSError) as exc:
        raise BakeRefused(f"{SOUNDTRACK}: not a PCM WAV file ({exc})",
                          code="bad_soundtrack") from None
    if rate <= 0 or count <= 0:
        raise BakeRefused(f"{SOUNDTRACK}: holds no audio", code="bad_soundtrack")
    return count / rate


def read_timing(path: Path, frames: int) -> list[float]:
    """timing.json: a list of per-frame durations in ms, a list of {"duration": ms, ...} (the
    old service's tapes), or {"durations_ms": [...]}."""
    if path.stat().st_size > _TIMING_MAX_BYTES:
        raise BakeRefused(f"{TIMING}: over {_TIMING_MAX_BYTES} bytes", code="bad_timing")
    try:
        data = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BakeRefused(f"{TIMING}: not valid JSON ({exc})", code="bad_timing") from None
    except RecursionError:
        raise BakeRefused(f"{TIMING}: not valid JSON (nested too deeply)",
                          code="bad_timing") from None
    if isinstance(data, dict):
        data = data.get("durations_ms")
    elif isinstance(data, list) and data and all(isinstance(d, dict) for d in data):
        # The old service's tapes: one object per frame, its duration in ms under "duration".
        data = [d.get("duration") for d in data]
    if not isinstance(data, list) or not all(
            isinstance(d, int | float) and not isinstance(d, bool) and 0 < d <= 3_600_000
            for d in data):
        raise BakeRefused(f"{TIMING}: expected a list of per-frame durations in ms (numbers "
                          'over 0), [{"duration": ms}, ...] or {"durations_ms": [...]}',
                          code="bad_timing")
    if len(data) != frames:
        raise BakeRefused(f"{TIMING}: {len(data)} durations for {frames} frames",
                          code="bad_timing")
    return [float(d) for d in data]
