"""Unpacking a frame archive (ZIP or tar) safely: every member checked before and while it is read.

Nothing in the archive chooses a path on disk: a member is written to `dest / <its base name>`
only after its name, type, declared size and compression ratio passed, and its bytes are counted
while they stream, so a header that lies about its size cannot write more than the limits allow.
Blocking code (zipfile/tarfile); callers run it in a worker thread.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import struct
import tarfile
import wave
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from PIL import Image

from oven.bakes._errors import BakeRefused
from oven.bakes._settings import BakeSettings

FRAME = re.compile(r"frame-(\d{5})\.png")
SOUNDTRACK = "soundtrack.wav"
TIMING = "timing.json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHUNK = 1024 * 1024
_TIMING_MAX_BYTES = 1024 * 1024
# Entries beyond the frames and the two extras: room for a folder entry or two, not a million.
_EXTRA_ENTRIES = 16


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


@dataclass
class _Tally:
    """Running totals over the members, checked against the limits as bytes arrive."""

    settings: BakeSettings
    archive_bytes: int
    total: int = 0
    frames: dict[int, str] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    size: tuple[int, int] | None = None
    entries: int = 0

    def add_bytes(self, name: str, count: int) -> None:
        self.total += count
        if self.total > self.settings.max_total_bytes:
            raise BakeRefused(
                f"archive unpacks to more than bakes.max_total_bytes "
                f"({self.settings.max_total_bytes} bytes); stopped at {name!r}",
                code="too_large", status=413)
        floor = self.settings.ratio_floor_bytes
        if self.total > floor and self.total > self.settings.max_ratio * self.archive_bytes:
            raise BakeRefused(
                f"archive unpacks to over {self.settings.max_ratio:g}x its size "
                f"(bakes.max_ratio); stopped at {name!r}: looks like a zip bomb",
                code="zip_bomb")


def unpack(archive: Path, dest: Path, settings: BakeSettings) -> Tape:
    """Check and unpack `archive` into `dest` (created); BakeRefused says what was wrong."""
    dest.mkdir(parents=True, exist_ok=True)
    with archive.open("rb") as f:
        head = f.read(4)
    tally = _Tally(settings, max(1, archive.stat().st_size))
    if head in (b"PK\x03\x04", b"PK\x05\x06"):
        _unpack_zip(archive, dest, tally)
    elif _is_tar(archive):
        _unpack_tar(archive, dest, tally)
    else:
        raise BakeRefused("archive: not a ZIP or tar file (looked at its first bytes, not its "
                          "name)", code="not_an_archive")
    return _tape(dest, tally)


def _is_tar(archive: Path) -> bool:
    try:
        return tarfile.is_tarfile(archive)
    except (OSError, EOFError, tarfile.TarError):
        return False


def safe_parts(raw: str) -> list[str]:
    """The parts of a member's path; refuses absolute, parent-relative and deep paths."""
    if "\\" in raw or "\x00" in raw:
        raise BakeRefused(f"member {raw!r}: backslashes and NUL are not allowed in names",
                          code="unsafe_path")
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        raise BakeRefused(f"member {raw!r}: absolute paths are not allowed", code="unsafe_path")
    parts = [p for p in PurePosixPath(raw).parts if p != "."]
    if ".." in parts:
        raise BakeRefused(f"member {raw!r}: '..' would write outside the bake", code="unsafe_path")
    if not parts:
        raise BakeRefused(f"member {raw!r}: empty name", code="unsafe_path")
    if len(parts) > 2:
        raise BakeRefused(f"member {raw!r}: frames may sit at the top or in one folder, "
                          "not deeper", code="bad_member")
    return parts


def check_folder(raw: str) -> None:
    """A folder entry creates nothing, but a dangerous path in one is still refused."""
    if raw.strip("./"):
        safe_parts(raw)


def member_name(raw: str) -> str:
    """The base name a member is written under; refuses unsafe or unexpected paths."""
    name = safe_parts(raw)[-1]
    if not (FRAME.fullmatch(name) or name in (SOUNDTRACK, TIMING)):
        raise BakeRefused(f"member {raw!r}: only frame-NNNNN.png, {SOUNDTRACK} and {TIMING} "
                          "may be in a bake archive", code="bad_member")
    return name


def _admit(tally: _Tally, raw: str, declared: int) -> str:
    """Checks a member may be unpacked at all, before any of its bytes are read."""
    settings = tally.settings
    tally.entries += 1
    if tally.entries > settings.max_frames + _EXTRA_ENTRIES:
        raise BakeRefused(f"archive: more than bakes.max_frames ({settings.max_frames}) frames",
                          code="too_many_frames")
    name = member_name(raw)
    if name in tally.names:
        raise BakeRefused(f"member {raw!r}: {name} appears twice", code="bad_member")
    tally.names.add(name)
    if declared > settings.max_frame_bytes:
        raise BakeRefused(f"member {raw!r}: {declared} bytes unpacked, over "
                          f"bakes.max_frame_bytes ({settings.max_frame_bytes})",
                          code="member_too_large", status=413)
    if match := FRAME.fullmatch(name):
        tally.frames[int(match[1])] = name
        if len(tally.frames) > settings.max_frames:
            raise BakeRefused(f"archive: more than bakes.max_frames ({settings.max_frames}) "
                              "frames", code="too_many_frames")
    return name


def _unpack_zip(archive: Path, dest: Path, tally: _Tally) -> None:
    settings = tally.settings
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BakeRefused(f"archive: not a readable ZIP ({exc})", code="not_an_archive") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > settings.max_frames + _EXTRA_ENTRIES:
            raise BakeRefused(f"archive: {len(infos)} entries, more than bakes.max_frames "
                              f"({settings.max_frames}) frames", code="too_many_frames")
        # First pass on the central directory alone: refuse bombs before inflating a byte.
        declared_total = 0
        plan: list[tuple[zipfile.ZipInfo, str]] = []
        for info in infos:
            if info.is_dir():
                check_folder(info.filename)
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise BakeRefused(f"member {info.filename!r}: symbolic links are not allowed",
                                  code="unsafe_path")
            if info.flag_bits & 0x1:
                raise BakeRefused(f"member {info.filename!r}: encrypted members are not "
                                  "supported", code="bad_member")
            name = _admit(tally, info.filename, info.file_size)
            if (info.file_size > settings.ratio_floor_bytes
                    and info.file_size > settings.max_ratio * max(1, info.compress_size)):
                raise BakeRefused(
                    f"member {info.filename!r}: {info.file_size} bytes from "
                    f"{info.compress_size} compressed, over bakes.max_ratio "
                    f"({settings.max_ratio:g}x): looks like a zip bomb", code="zip_bomb")
            declared_total += info.file_size
            plan.append((info, name))
        if declared_total > settings.max_total_bytes:
            raise BakeRefused(f"archive: members add up to {declared_total} bytes unpacked, over "
                              f"bakes.max_total_bytes ({settings.max_total_bytes})",
                              code="too_large", status=413)
        for info, name in plan:
            try:
                with zf.open(info) as src:
                    _copy_member(src, dest / name, info.filename, info.file_size, tally)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError,
                    EOFError, OSError) as exc:
                raise BakeRefused(f"member {info.filename!r}: cannot be read ({exc})",
                                  code="bad_member") from None


def _unpack_tar(archive: Path, dest: Path, tally: _Tally) -> None:
    try:
        # Streaming mode ("r|*"): members are read in order, never seeking back; a compressed
        # tar is inflated once, and only as far as the limits allow.
        tf = tarfile.open(archive, mode="r|*")  # noqa: SIM115 - closed by the `with` below
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BakeRefused(f"archive: not a readable tar ({exc})", code="not_an_archive") from None
    try:
        with tf:
            for member in _members(tf):
                if member.isdir():
                    check_folder(member.name)
                    continue
                if member.issym() or member.islnk():
                    raise BakeRefused(f"member {member.name!r}: links are not allowed "
                                      f"(points to {member.linkname!r})", code="unsafe_path")
                if not member.isfile():
                    raise BakeRefused(f"member {member.name!r}: only regular files are allowed",
                                      code="unsafe_path")
                name = _admit(tally, member.name, member.size)
                src = tf.extractfile(member)
                assert src is not None  # a regular file always has a reader
                _copy_member(src, dest / name, member.name, member.size, tally)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BakeRefused(f"archive: tar cannot be read ({exc})", code="not_an_archive") from None


def _members(tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while (member := tf.next()) is not None:
        yield member


def _copy_member(src: IO[bytes], target: Path, raw: str, declared: int, tally: _Tally) -> None:
    """Stream one member to disk, counting bytes against its declared size and the totals."""
    settings = tally.settings
    written = 0
    with target.open("xb") as out:
        first = True
        while chunk := src.read(_CHUNK):
            if first and FRAME.fullmatch(target.name):
                _check_png_header(chunk, raw, tally)
            first = False
            written += len(chunk)
            if written > declared or written > settings.max_frame_bytes:
                raise BakeRefused(f"member {raw!r}: unpacks past its declared size "
                                  f"({declared} bytes)", code="zip_bomb")
            tally.add_bytes(raw, len(chunk))
            out.write(chunk)
    if first and FRAME.fullmatch(target.name):
        _check_png_header(b"", raw, tally)


def _check_png_header(head: bytes, raw: str, tally: _Tally) -> None:
    """PNG signature and IHDR dimensions, from the first bytes: the name proves nothing."""
    if not head.startswith(PNG_SIGNATURE):
        raise BakeRefused(f"member {raw!r}: not a PNG (no PNG signature)", code="not_png")
    if len(head) < 24 or head[12:16] != b"IHDR":
        raise BakeRefused(f"member {raw!r}: PNG without an IHDR header", code="not_png")
    width, height = struct.unpack(">II", head[16:24])
    if width == 0 or height == 0:
        raise BakeRefused(f"member {raw!r}: PNG of {width}x{height} pixels", code="not_png")
    limit = tally.settings.max_frame_pixels
    if width * height > limit:
        raise BakeRefused(f"member {raw!r}: {width}x{height} frame is over "
                          f"bakes.max_frame_pixels ({limit})", code="frame_too_large")
    if tally.size is None:
        tally.size = (width, height)
    elif tally.size != (width, height):
        first_w, first_h = tally.size
        raise BakeRefused(f"member {raw!r}: {width}x{height}, but earlier frames are "
                          f"{first_w}x{first_h}; all frames must be the same size",
                          code="frame_size_mismatch")


def _tape(dest: Path, tally: _Tally) -> Tape:
    if not tally.frames:
        raise BakeRefused("archive: no frame-NNNNN.png frames in it", code="no_frames")
    indexes = sorted(tally.frames)
    first = indexes[0]
    for expected, index in enumerate(indexes, start=first):
        if index != expected:
            raise BakeRefused(f"frames: frame-{expected:05d}.png is missing (frames must be "
                              "numbered without gaps)", code="frame_gap")
    for index in indexes:
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
    """timing.json: a list of per-frame durations in ms, or {"durations_ms": [...]}."""
    if path.stat().st_size > _TIMING_MAX_BYTES:
        raise BakeRefused(f"{TIMING}: over {_TIMING_MAX_BYTES} bytes", code="bad_timing")
    try:
        data = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BakeRefused(f"{TIMING}: not valid JSON ({exc})", code="bad_timing") from None
    if isinstance(data, dict):
        data = data.get("durations_ms")
    if not isinstance(data, list) or not all(
            isinstance(d, int | float) and not isinstance(d, bool) and 0 < d <= 3_600_000
            for d in data):
        raise BakeRefused(f"{TIMING}: expected a list of per-frame durations in ms (numbers "
                          'over 0), or {"durations_ms": [...]}', code="bad_timing")
    if len(data) != frames:
        raise BakeRefused(f"{TIMING}: {len(data)} durations for {frames} frames",
                          code="bad_timing")
    return [float(d) for d in data]


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
