"""Checks shared by the ZIP and tar readers: names, counts, sizes, time, and the PNG header.

Every entry an archive lists counts (folders too), every byte that comes out of it counts
(header bytes too, see `_tar`), and all of it stops at the check's deadline: the checks run in
a worker thread that cannot be killed, so they must end themselves.
"""

from __future__ import annotations

import re
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, NoReturn

from oven.bakes._errors import BakeRefused
from oven.bakes._settings import BakeSettings

FRAME = re.compile(r"frame-(\d{5})\.png")
SOUNDTRACK = "soundtrack.wav"
TIMING = "timing.json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHUNK = 1024 * 1024
# Entries beyond the frames and the two extras: room for a folder entry or two, not a million.
EXTRA_ENTRIES = 16
# A name is echoed in refusals and logs; one from a hostile header can be megabytes long.
_SHOWN_CHARS = 120


def shown(raw: str) -> str:
    """`raw` quoted for a message, cut short if it is long."""
    if len(raw) <= _SHOWN_CHARS:
        return repr(raw)
    return f"{raw[:_SHOWN_CHARS]!r}… ({len(raw)} characters)"


@dataclass
class Tally:
    """Running totals over the entries, checked against the limits as bytes arrive."""

    settings: BakeSettings
    archive_bytes: int
    deadline: float
    total: int = 0
    frames: dict[int, str] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    size: tuple[int, int] | None = None
    entries: int = 0

    @property
    def max_entries(self) -> int:
        return self.settings.max_frames + EXTRA_ENTRIES

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise BakeRefused(f"archive: checking it took over bakes.check_timeout_s "
                              f"({self.settings.check_timeout_s:g} s)", code="check_timeout")

    def count_entry(self) -> None:
        """One more entry of any kind (file, folder, anything the archive lists)."""
        self.check_time()
        self.entries += 1
        if self.entries > self.max_entries:
            self.refuse_entries(f"more than {self.max_entries}")

    def refuse_entries(self, count: str) -> NoReturn:
        raise BakeRefused(f"archive: {count} entries; bakes.max_frames "
                          f"({self.settings.max_frames}) frames and {EXTRA_ENTRIES} others "
                          "may be in one (folders count too)", code="too_many_members")

    def add_bytes(self, name: str, count: int) -> None:
        self.total += count
        if self.total > self.settings.max_total_bytes:
            raise BakeRefused(
                f"archive unpacks to more than bakes.max_total_bytes "
                f"({self.settings.max_total_bytes} bytes); stopped at {shown(name)}",
                code="too_large", status=413)
        floor = self.settings.ratio_floor_bytes
        if self.total > floor and self.total > self.settings.max_ratio * self.archive_bytes:
            raise BakeRefused(
                f"archive unpacks to over {self.settings.max_ratio:g}x its size "
                f"(bakes.max_ratio); stopped at {shown(name)}: looks like a zip bomb",
                code="zip_bomb")


def safe_parts(raw: str) -> list[str]:
    """The parts of a member's path; refuses absolute, parent-relative and deep paths."""
    if "\\" in raw or "\x00" in raw:
        raise BakeRefused(f"member {shown(raw)}: backslashes and NUL are not allowed in names",
                          code="unsafe_path")
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        raise BakeRefused(f"member {shown(raw)}: absolute paths are not allowed",
                          code="unsafe_path")
    parts = [p for p in PurePosixPath(raw).parts if p != "."]
    if ".." in parts:
        raise BakeRefused(f"member {shown(raw)}: '..' would write outside the bake",
                          code="unsafe_path")
    if not parts:
        raise BakeRefused(f"member {shown(raw)}: empty name", code="unsafe_path")
    if len(parts) > 2:
        raise BakeRefused(f"member {shown(raw)}: frames may sit at the top or in one folder, "
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
        raise BakeRefused(f"member {shown(raw)}: only frame-NNNNN.png, {SOUNDTRACK} and "
                          f"{TIMING} may be in a bake archive", code="bad_member")
    return name


def admit(tally: Tally, raw: str, declared: int) -> str:
    """Checks a file member may be unpacked at all, before any of its bytes are read (its
    entry was counted already)."""
    settings = tally.settings
    name = member_name(raw)
    if name in tally.names:
        raise BakeRefused(f"member {shown(raw)}: {name} appears twice", code="bad_member")
    tally.names.add(name)
    if declared > settings.max_frame_bytes:
        raise BakeRefused(f"member {shown(raw)}: {declared} bytes unpacked, over "
                          f"bakes.max_frame_bytes ({settings.max_frame_bytes})",
                          code="member_too_large", status=413)
    if match := FRAME.fullmatch(name):
        tally.frames[int(match[1])] = name
        if len(tally.frames) > settings.max_frames:
            raise BakeRefused(f"archive: more than bakes.max_frames ({settings.max_frames}) "
                              "frames", code="too_many_frames")
    return name


def copy_member(src: IO[bytes], target: Path, raw: str, declared: int, tally: Tally) -> None:
    """Stream one member to disk, counting bytes against its declared size and the totals."""
    settings = tally.settings
    written = 0
    is_frame = FRAME.fullmatch(target.name) is not None
    with target.open("xb") as out:
        first = True
        while chunk := src.read(CHUNK):
            tally.check_time()
            if first and is_frame:
                _check_png_header(chunk, raw, tally)
            first = False
            written += len(chunk)
            if written > declared or written > settings.max_frame_bytes:
                raise BakeRefused(f"member {shown(raw)}: unpacks past its declared size "
                                  f"({declared} bytes)", code="zip_bomb")
            tally.add_bytes(raw, len(chunk))
            out.write(chunk)
    if first and is_frame:
        _check_png_header(b"", raw, tally)


def _check_png_header(head: bytes, raw: str, tally: Tally) -> None:
    """PNG signature and IHDR dimensions, from the first bytes: the name proves nothing."""
    if not head.startswith(PNG_SIGNATURE):
        raise BakeRefused(f"member {shown(raw)}: not a PNG (no PNG signature)", code="not_png")
    if len(head) < 24 or head[12:16] != b"IHDR":
        raise BakeRefused(f"member {shown(raw)}: PNG without an IHDR header", code="not_png")
    width, height = struct.unpack(">II", head[16:24])
    if width == 0 or height == 0:
        raise BakeRefused(f"member {shown(raw)}: PNG of {width}x{height} pixels",
                          code="not_png")
    limit = tally.settings.max_frame_pixels
    if width * height > limit:
        raise BakeRefused(f"member {shown(raw)}: {width}x{height} frame is over "
                          f"bakes.max_frame_pixels ({limit})", code="frame_too_large")
    if tally.size is None:
        tally.size = (width, height)
    elif tally.size != (width, height):
        first_w, first_h = tally.size
        raise BakeRefused(f"member {shown(raw)}: {width}x{height}, but earlier frames are "
                          f"{first_w}x{first_h}; all frames must be the same size",
                          code="frame_size_mismatch")
