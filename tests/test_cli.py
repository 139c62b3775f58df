"""The `oven` command as a user runs it: grab and doctor, in child processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
from PIL import Image


def oven(*args: str, tmp_path: Path, env: dict[str, str] | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "OVEN_SERVER__DATA_DIR": str(tmp_path / "data"), **(env or {})}
    environment.pop("OVEN_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "oven", *args], capture_output=True,
                          text=True, timeout=timeout, env=environment, cwd=tmp_path)


def chromium_owned_by(pid: int) -> list[int]:
    flag = f"--oven-owner={pid}-"
    found = []
    for proc in psutil.process_iter():
        try:
            if any(arg.startswith(flag) for arg in proc.cmdline()):
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def test_oven_grab_writes_an_animated_webp_and_leaves_nothing_running(tmp_path: Path) -> None:
    out = tmp_path / "anim.webp"
    environment = {**os.environ, "OVEN_SERVER__DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "oven", "grab", "anim", "--format", "webp", "--size", "320x180",
         "--frames", "6", "--fps", "20", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment, cwd=tmp_path)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert f"wrote {out}" in stderr and "running" in stderr  # progress, then the result
    with Image.open(out) as image:
        assert image.size == (320, 180)
        assert getattr(image, "n_frames", 1) == 6
    assert chromium_owned_by(proc.pid) == []


def test_oven_grab_fails_with_the_reason_and_a_non_zero_exit(tmp_path: Path) -> None:
    result = oven("grab", "throws", "-o", str(tmp_path / "x.png"), tmp_path=tmp_path)
    assert result.returncode == 1
    assert "failed: piece threw" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_oven_grab_refuses_bad_input_before_starting_anything(tmp_path: Path) -> None:
    result = oven("grab", "anim", "--size", "99999x10", tmp_path=tmp_path, timeout=30)
    assert result.returncode == 2
    assert "width: at most" in result.stderr
    assert "starting chromium" not in result.stderr


def test_oven_doctor_checks_every_part_and_exits_zero_when_all_is_well(tmp_path: Path) -> None:
    result = oven("doctor", tmp_path=tmp_path, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    for part in ("data_dir", "chromium", "ffmpeg", "webpmux", "storage", "store"):
        assert f"ok    {part}" in result.stdout


def test_oven_doctor_says_what_to_do_when_webpmux_is_missing(tmp_path: Path) -> None:
    result = oven("doctor", tmp_path=tmp_path, timeout=60,
                  env={"OVEN_ENCODER__WEBPMUX_PATH": "/nonexistent/webpmux"})
    assert result.returncode == 1
    assert "FAIL  webpmux" in result.stdout
    assert "apt-get install webp" in result.stdout
    off = oven("doctor", tmp_path=tmp_path, timeout=60,
               env={"OVEN_ENCODER__WEBPMUX_PATH": "/nonexistent/webpmux",
                    "OVEN_ENCODER__CANVAS_FRAMES": "false"})
    assert off.returncode == 0, off.stdout
    assert "ok    webpmux" in off.stdout and "canvas_frames = false" in off.stdout


def test_oven_doctor_says_what_to_do_when_chromium_is_missing(tmp_path: Path) -> None:
    result = oven("doctor", tmp_path=tmp_path, timeout=60,
                  env={"OVEN_BROWSER__EXECUTABLE_PATH": "/nonexistent/chromium"})
    assert result.returncode == 1
    assert "FAIL  chromium" in result.stdout
    assert "apt-get install chromium" in result.stdout


def test_oven_grab_runs_its_capture_even_when_the_config_says_role_api(tmp_path: Path) -> None:
    # An api role claims nothing: before, the grab waited in the queue with nobody to run it.
    out = tmp_path / "still.png"
    result = oven("grab", "still", "--size", "64x48", "-o", str(out), tmp_path=tmp_path,
                  env={"OVEN_CLUSTER__ROLE": "api"}, timeout=90)
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image:
        assert image.size == (64, 48)


def test_oven_doctor_on_an_api_host_needs_neither_chromium_nor_ffmpeg(tmp_path: Path) -> None:
    result = oven("doctor", tmp_path=tmp_path, timeout=60,
                  env={"OVEN_CLUSTER__ROLE": "api",
                       "OVEN_BROWSER__EXECUTABLE_PATH": "/nonexistent/chromium",
                       "OVEN_ENCODER__FFMPEG_PATH": "/nonexistent/ffmpeg"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout
    assert "ok    capture" in result.stdout and "not needed here" in result.stdout
