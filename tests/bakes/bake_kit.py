"""Making bake archives for tests: Pillow frames, `wave` soundtracks, ZIP and tar builders."""

from __future__ import annotations

import io
import json
import math
import struct
import subprocess
import tarfile
import wave
import zipfile
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw
from pipeline.grab_client import wait_until

__all__ = ["wait_until"]  # the pipeline tests' bounded poll, for the bake tests

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
