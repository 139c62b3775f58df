"""Reading a ZIP archive: the central directory is sized up before zipfile parses it.

`zipfile.ZipFile()` reads the whole central directory and builds an object per entry it lists,
however many that is, before anyone can count them: a 3 MB upload lists 60 000 entries. The end
record says how many entries and how many directory bytes there are; both are checked first.
Then every entry is checked on the directory alone (names, sizes, ratios) before a byte is
inflated, and the bytes are counted again as they stream.
"""

from __future__ import annotations

import lzma
import stat
import struct
import zipfile
import zlib
from pathlib import Path

from oven.bakes._errors import BakeRefused
from oven.bakes._members import Tally, admit, check_folder, copy_member, shown

_END = struct.Struct("<4s4H2LH")  # end of central directory record
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64 = struct.Struct("<4sQ2H2L4Q")
# A directory entry is 46 bytes plus its name, extra fields and comment; a real one in a frame
# archive is under 150 bytes.
_DIRECTORY_ENTRY_MAX_BYTES = 512


def _directory_size(archive: Path) -> tuple[int, int] | None:
    """(entries, central directory bytes) as the end record states them; None when there is no
    end record (zipfile then says what is wrong)."""
    size = archive.stat().st_size
    with archive.open("rb") as f:
        tail_at = max(0, size - (_END.size + 0xFFFF))
        f.seek(tail_at)
        tail = f.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < _END.size:
            return None
        _, _, _, _, entries, directory, _, _ = _END.unpack_from(tail, at)
        if entries != 0xFFFF and directory != 0xFFFFFFFF:
            return entries, directory
        # ZIP64: the real figures are in a record the locator just before the end record names.
        locator = at - _END64_LOCATOR.size
        if locator < 0 or tail[locator:locator + 4] != b"PK\x06\x07":
            return entries, directory
        _, _, record_at, _ = _END64_LOCATOR.unpack_from(tail, locator)
        f.seek(record_at)
        record = f.read(_END64.size)
    if len(record) < _END64.size or not record.startswith(b"PK\x06\x06"):
        return entries, directory
    fields = _END64.unpack(record)
    return fields[7], fields[8]


def unpack_zip(archive: Path, dest: Path, tally: Tally) -> None:
    settings = tally.settings
    stated = _directory_size(archive)
    if stated is not None:
        entries, directory = stated
        if entries > tally.max_entries:
            tally.refuse_entries(str(entries))
        if directory > tally.max_entries * _DIRECTORY_ENTRY_MAX_BYTES:
            tally.refuse_entries(f"a central directory of {directory} bytes, room for over "
                                 f"{tally.max_entries}")
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise BakeRefused(f"archive: not a readable ZIP ({exc})", code="not_an_archive") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > tally.max_entries:
            tally.refuse_entries(str(len(infos)))
        # First pass on the central directory alone: refuse bombs before inflating a byte.
        declared_total = 0
        plan: list[tuple[zipfile.ZipInfo, str]] = []
        for info in infos:
            tally.count_entry()
            if info.is_dir():
                check_folder(info.filename)
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise BakeRefused(f"member {shown(info.filename)}: symbolic links are not "
                                  "allowed", code="unsafe_path")
            if info.flag_bits & 0x1:
                raise BakeRefused(f"member {shown(info.filename)}: encrypted members are not "
                                  "supported", code="bad_member")
            name = admit(tally, info.filename, info.file_size)
            if (info.file_size > settings.ratio_floor_bytes
                    and info.file_size > settings.max_ratio * max(1, info.compress_size)):
                raise BakeRefused(
                    f"member {shown(info.filename)}: {info.file_size} bytes from "
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
                    copy_member(src, dest / name, info.filename, info.file_size, tally)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError,
                    EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
                raise BakeRefused(f"member {shown(info.filename)}: cannot be read ({exc})",
                                  code="bad_member") from None
