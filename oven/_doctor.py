"""`oven doctor`: check each part oven needs and say what to do about each failure."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oven.config import Settings
from oven.encode import check_ffmpeg
from oven.storage import make_storage
from oven.store import make_store


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def _chromium(settings: Settings) -> Check:
    path = settings.browser.executable_path
    if shutil.which(path) is None and not Path(path).is_file():
        return Check("chromium", False, f"not found at {path!r}: install Debian's chromium "
                     "(apt-get install chromium) or set [browser] executable_path")
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("chromium", False, f"{path} --version failed: {exc}")
    if out.returncode != 0:
        return Check("chromium", False, f"{path} --version exited {out.returncode}: "
                     f"{out.stderr.strip()[-200:]}")
    return Check("chromium", True, out.stdout.strip())


def _ffmpeg(settings: Settings) -> Check:
    problem = check_ffmpeg(settings.encoder)
    if problem:
        return Check("ffmpeg", False, problem)
    return Check("ffmpeg", True, f"{settings.encoder.ffmpeg_path} usable for every format")


def _data_dir(settings: Settings) -> Check:
    path = settings.server.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".doctor-probe"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        return Check("data_dir", False, f"{path} is not writable ({exc.strerror}): "
                     "set [server] data_dir to a writable directory")
    free = shutil.disk_usage(path).free
    return Check("data_dir", True, f"{path.resolve()} writable, {free / 2**30:.1f} GiB free")


async def _reachable(name: str, backend: str, part: Any, probe: str) -> Check:
    """Start a storage or store backend, run its probe, close it; each step bounded."""
    try:
        async with asyncio.timeout(20):
            await part.start()
        async with asyncio.timeout(20):
            await getattr(part, probe)()
    except Exception as exc:
        return Check(name, False, f"{backend}: {exc}")
    finally:
        await part.close()
    return Check(name, True, f"{backend} reachable")


def run_checks(settings: Settings) -> list[Check]:
    checks = [_data_dir(settings), _chromium(settings), _ffmpeg(settings)]

    async def remote() -> list[Check]:
        data_dir = settings.server.data_dir
        return [
            await _reachable("storage", settings.storage.backend,
                             make_storage(settings.storage, data_dir), "check"),
            await _reachable("store", settings.store.backend,
                             make_store(settings.store, data_dir), "ping"),
        ]

    checks += asyncio.run(remote())
    if os.geteuid() == 0 and "--no-sandbox" not in settings.browser.args:
        checks.append(Check("sandbox", False, "running as root needs --no-sandbox in "
                            "[browser] args (Chromium refuses to start otherwise)"))
    return checks
