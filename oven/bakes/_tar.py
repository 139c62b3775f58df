"""Reading a (compressed) tar archive with every header byte counted.

`tarfile` reads a GNU long name or link (`././@LongLink`) and a pax record whole into memory
before it hands over the member they describe: a 1 KB `.tar.bz2` can claim a name of hundreds
of megabytes. So we decompress ourselves and hand tarfile a stream that knows when tarfile is
looking for the next member: everything read then is header, and more than `HEADER_MAX_BYTES`
of it before one member is refused before it is held. Header bytes also count against the
archive's unpacked total and ratio, like member bytes.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from oven.bakes._errors import BakeRefused
from oven.bakes._members import CHUNK, Tally, admit, check_folder, copy_member, shown

# Names and pax records of a real frame archive take a few hundred bytes; tarfile itself reads
# ahead up to 10 KiB. Small enough that a chain of pax headers cannot recurse deeply either.
HEADER_MAX_BYTES = 64 * 1024
_READ_ERRORS = (tarfile.TarError, EOFError, OSError, lzma.LZMAError, zlib.error)


def _decompressed(raw: IO[bytes]) -> IO[bytes] | gzip.GzipFile:
    """The plain tar stream of `raw`: gzip, bzip2 and xz are recognised by their first bytes,
    as tarfile's own "r|*" does; anything else is read as it is."""
    head = raw.read(6)
    raw.seek(0)
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if head.startswith(b"BZh"):
        return bz2.BZ2File(raw)
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw)
    return raw


def is_tar(archive: Path) -> bool:
    """True when the archive's first (decompressed) block is a tar header with a valid
    checksum. Not `tarfile.is_tarfile`: that reads the whole first member, bomb included."""
    try:
        with archive.open("rb") as raw, _decompressed(raw) as plain:
            block = plain.read(tarfile.BLOCKSIZE)
            tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except _READ_ERRORS:
        return False
    return True


class _CountedStream:
    """What tarfile reads: the decompressed archive, with header bytes counted and bounded."""

    def __init__(self, plain: IO[bytes] | gzip.GzipFile, tally: Tally) -> None:
        self._plain = plain
        self._tally = tally
        self._header_left: int | None = None

    def read(self, size: int = -1) -> bytes:
        self._tally.check_time()
        data = self._plain.read(CHUNK if size < 0 else min(size, CHUNK))
        if self._header_left is not None:
            self._header_left -= len(data)
            if self._header_left < 0:
                raise BakeRefused(f"archive: over {HEADER_MAX_BYTES} bytes of tar headers "
                                  "(long names, pax records) before one member",
                                  code="header_too_large", status=413)
            self._tally.add_bytes("(tar headers)", len(data))
        return data

    @contextlib.contextmanager
    def headers(self) -> Iterator[None]:
        """While tarfile looks for the next member, everything it reads is header."""
        self._header_left = HEADER_MAX_BYTES
        try:
            yield
        finally:
            self._header_left = None


def unpack_tar(archive: Path, dest: Path, tally: Tally) -> None:
    try:
        with archive.open("rb") as raw, _decompressed(raw) as plain:
            stream = _CountedStream(plain, tally)
            # Streaming mode ("r|"): members are read in order, never seeking back, so the
            # archive is inflated once, and only as far as the limits allow. Opening reads
            # the first member's headers already.
            with stream.headers():
                tf = tarfile.open(  # type: ignore[call-overload]  # noqa: SIM115 - closed below
                    fileobj=stream, mode="r|")
            with tf:
                _unpack_members(tf, stream, dest, tally)
    except RecursionError:
        # tarfile recurses once per chained pax/GNU header; the byte bound keeps chains short,
        # this keeps a deeper stack than expected from becoming a 500.
        raise BakeRefused("archive: too many chained tar headers before one member",
                          code="header_too_large", status=413) from None
    except _READ_ERRORS as exc:
        raise BakeRefused(f"archive: tar cannot be read ({exc})",
                          code="not_an_archive") from None


def _unpack_members(tf: tarfile.TarFile, stream: _CountedStream, dest: Path,
                    tally: Tally) -> None:
    while True:
        with stream.headers():
            member = tf.next()
        if member is None:
            return
        tally.count_entry()
        if member.isdir():
            check_folder(member.name)
            continue
        if member.issym() or member.islnk():
            raise BakeRefused(f"member {shown(member.name)}: links are not allowed "
                              f"(points to {shown(member.linkname)})", code="unsafe_path")
        if not member.isfile() or member.issparse():
            raise BakeRefused(f"member {shown(member.name)}: only regular files are allowed",
                              code="unsafe_path")
        name = admit(tally, member.name, member.size)
        src = tf.extractfile(member)
        assert src is not None  # a regular file always has a reader
        copy_member(src, dest / name, member.name, member.size, tally)
