"""Making bake archives for tests: Pillow frames, `wave` soundtracks, ZIP and tar builders."""

from __future__ import annotations

import bz2
import io
import json
import lzma
import math
import struct
import subprocess
import tarfile
import wave
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

Members = dict[str, bytes]


def png_frame(index: int, size: tuple[int, int] = (64, 48), *, noisy: bool = False) -> bytes:
    """A frame with a square that moves with `index` (noise makes it costly to encode)."""
    width, height = size
    if noisy:
        # Pseudo-random pixels: x264 cannot predict them, so an encode takes measurable time.
        seed = (index * 7919) % 251
        raw = bytes((seed + i * i * 31) % 256 for i in range(width * height * 3))
        image = Image.frombytes("RGB", size, raw)
    else:
        image = Image.new("RGB", size, (20, 30, 60))
    draw = ImageDraw.Draw(image)
    x = index * 3 % max(1, width - 8)
    draw.rectangle((x, height // 3, x + 8, height // 3 + 8), fill=(240, 120, 40))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def wav_bytes(seconds: float, *, rate: int = 22050) -> bytes:
    """A mono 16-bit PCM 440 Hz tone."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        count = int(seconds * rate)
        wav.writeframes(b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
            for i in range(count)))
    return out.getvalue()


def frames(count: int, size: tuple[int, int] = (64, 48), **kw: Any) -> Members:
    return {f"frame-{i:05d}.png": png_frame(i, size, **kw) for i in range(count)}


def timing(durations_ms: list[float]) -> Members:
    return {"timing.json": json.dumps(durations_ms).encode()}


def zip_bytes(members: Members, *, compression: int = zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def tar_bytes(members: Members, *, symlinks: dict[str, str] | None = None,
              mode: str = "w") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as tf:  # type: ignore[call-overload]
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return out.getvalue()


def zip_with_symlink(members: Members, link: str, target: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        info = zipfile.ZipInfo(link)
        info.external_attr = (0o120777 << 16)  # S_IFLNK: how zip tools store a symlink
        zf.writestr(info, target)
    return out.getvalue()


def ffprobe(path: Path) -> dict[str, Any]:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format",
         "-of", "json", str(path)], capture_output=True, timeout=60, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def video_stream(probe: dict[str, Any]) -> dict[str, Any]:
    streams = [s for s in probe["streams"] if s["codec_type"] == "video"]
    assert len(streams) == 1, probe
    return streams[0]


def audio_streams(probe: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in probe["streams"] if s["codec_type"] == "audio"]


def rate(text: str) -> float:
    num, _, den = text.partition("/")
    return float(num) / float(den or 1)


# -- hostile archives whose headers, not their members, are the bomb --------------------------

_CHUNK = 1 << 20


def _compressor(compression: str) -> Any:
    if compression == "xz":
        return lzma.LZMACompressor(preset=1)
    if compression == "bz2":
        return bz2.BZ2Compressor(1)
    if compression == "gz":
        return zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: a gzip container
    raise ValueError(compression)


def compressed(parts: Iterable[bytes], compression: str) -> bytes:
    """`parts` joined and compressed as one stream, without holding the plain bytes."""
    packer = _compressor(compression)
    out = [packer.compress(part) for part in parts]
    out.append(packer.flush())
    return b"".join(out)


def tar_block(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def _padding(size: int) -> bytes:
    return b"\0" * (-size % tarfile.BLOCKSIZE)


def _repeated(byte: bytes, count: int) -> Iterator[bytes]:
    chunk = byte * _CHUNK
    while count > 0:
        yield chunk[:count]
        count -= len(chunk)


def _frame_member(index: int = 0) -> Iterator[bytes]:
    data = png_frame(index)
    yield tar_block(f"frame-{index:05d}.png", len(data))
    yield data + _padding(len(data))


def header_bomb(kind: bytes, claimed: int, compression: str) -> bytes:
    """A compressed tar whose first header claims `claimed` bytes of header data, then a frame.

    `kind` is GNU long name (L) or long link name (K), or a pax extended (x) or global (g)
    header holding one `path` record that long. tarfile reads such a header whole into memory
    before it hands over the member it describes.
    """
    def stream() -> Iterator[bytes]:
        if kind in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            yield tar_block("././@LongLink", claimed, kind)
            yield from _repeated(b"a", claimed)
        else:
            record = f"{claimed} path=".encode()
            yield tar_block("pax-header", claimed, kind)
            yield record
            yield from _repeated(b"a", claimed - len(record) - 1)
            yield b"\n"
        yield _padding(claimed)
        yield from _frame_member()
        yield b"\0" * (2 * tarfile.BLOCKSIZE)

    return compressed(stream(), compression)


def pax_chain(count: int, compression: str = "gz") -> bytes:
    """`count` small pax headers in a row before one frame: tarfile recurses once per header."""
    record = b"20 comment=xxxxxxxx\n"

    def stream() -> Iterator[bytes]:
        for _ in range(count):
            yield tar_block("pax-header", len(record), tarfile.XHDTYPE)
            yield record + _padding(len(record))
        yield from _frame_member()
        yield b"\0" * (2 * tarfile.BLOCKSIZE)

    return compressed(stream(), compression)


def many_directories(count: int, compression: str = "gz") -> bytes:
    """`count` directory entries, then two frames: a tar that is almost all entries."""
    folder = tar_block("d/", 0, tarfile.DIRTYPE)

    def stream() -> Iterator[bytes]:
        batch = folder * 2048
        for start in range(0, count, 2048):
            yield batch[:(min(count, start + 2048) - start) * tarfile.BLOCKSIZE]
        yield from _frame_member(0)
        yield from _frame_member(1)
        yield b"\0" * (2 * tarfile.BLOCKSIZE)

    return compressed(stream(), compression)


def zip_of_many_entries(count: int) -> bytes:
    """A ZIP of one frame whose central directory also lists `count` empty folder entries (no
    data of their own): zipfile builds an object per entry before anyone can count them."""
    one = zip_bytes(frames(1))
    end_at = one.rindex(b"PK\x05\x06")
    (_, _, _, _, total, size, offset, _) = struct.unpack("<4s4H2LH", one[end_at:end_at + 22])
    entry = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0,
                        2, 0, 0, 0, 0, 0x10, 0) + b"d/"
    directory = one[offset:offset + size] + entry * count
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, min(total + count, 0xFFFF),
                      min(total + count, 0xFFFF), len(directory), offset, 0)
    return one[:offset] + directory + end
