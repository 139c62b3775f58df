"""`oven doctor` renders a probe page in the configured Chromium: fonts, colour emoji, WebGL.

Each test runs the real command in a child process against the real Chromium. The failures are
real conditions, not mocks: WebGL turned off by the [browser] args a user could write, and fonts
hidden from Chromium by a fontconfig file (FONTCONFIG_FILE) listing fewer font directories.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from oven.capture import BrowserSettings
from tests.test_cli import chromium_owned_by

EMOJI_FONT_DIR = Path("/usr/share/fonts/truetype/noto")  # fonts-noto-color-emoji


@dataclass
class Doctor:
    returncode: int
    stdout: str
    stderr: str

    def line(self, name: str) -> str:
        """The report line of one check (fails the test when it is missing)."""
        found = [row for row in self.stdout.splitlines() if row[6:].split(" ", 1)[0] == name]
        assert len(found) == 1, f"no single {name!r} line in:\n{self.stdout}\n{self.stderr}"
        return found[0]


def run_doctor(tmp_path: Path, *, config: str = "", env: dict[str, str] | None = None,
               timeout: float = 180) -> Doctor:
    """`oven doctor` in a child process; afterwards no Chromium it started may be running."""
    config_file = tmp_path / "oven.toml"
    config_file.write_text(config)
    environment = {**os.environ, "OVEN_SERVER__DATA_DIR": str(tmp_path / "data"), **(env or {})}
    environment.pop("OVEN_CONFIG", None)
    proc = subprocess.Popen([sys.executable, "-m", "oven", "--config", str(config_file), "doctor"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=environment, cwd=tmp_path)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
        proc.wait()
    assert chromium_owned_by(proc.pid) == []
    return Doctor(proc.returncode, stdout, stderr)


def fonts_conf(tmp_path: Path, *dirs: Path) -> dict[str, str]:
    """An environment whose fontconfig knows only `dirs` (none: Chromium finds no font at all)."""
    listed = "".join(f"<dir>{d}</dir>" for d in dirs)
    conf = tmp_path / "fonts.conf"
    conf.write_text('<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">'
                    f"\n<fontconfig>{listed}<cachedir>{tmp_path / 'fc-cache'}</cachedir>"
                    "</fontconfig>\n")
    return {"FONTCONFIG_FILE": str(conf)}


def browser_args(*, adding: tuple[str, ...]) -> str:
    args = [*BrowserSettings().args, *adding]
    return "[browser]\nargs = [" + ", ".join(f'"{a}"' for a in args) + "]\n"


def test_oven_doctor_finds_latin_cjk_and_colour_emoji_fonts_and_webgl_in_chromium(
        tmp_path: Path) -> None:
    doctor = run_doctor(tmp_path)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    fonts, emoji, webgl = doctor.line("fonts"), doctor.line("emoji"), doctor.line("webgl")
    assert fonts.startswith("ok") and "Latin" in fonts and "CJK" in fonts
    assert emoji.startswith("ok") and "Noto Color Emoji" in emoji
    assert webgl.startswith("ok") and "SwiftShader" in webgl  # the renderer it reports


@pytest.mark.parametrize("switch", [
    "--disable-webgl", "--disable-3d-apis",
    "--disable-software-rasterizer",  # takes SwiftShader, the only GL of a GPU-less Chromium
])
def test_oven_doctor_says_webgl_is_off_and_names_the_switch_that_turned_it_off(
        tmp_path: Path, switch: str) -> None:
    doctor = run_doctor(tmp_path, config=browser_args(adding=(switch,)))
    assert doctor.returncode == 1
    webgl = doctor.line("webgl")
    assert webgl.startswith("FAIL") and "no WebGL context" in webgl
    assert f"remove {switch} from [browser] args" in webgl
    assert doctor.line("fonts").startswith("ok")  # only what is broken is reported broken


def test_oven_doctor_says_which_packages_to_install_when_chromium_finds_no_font(
        tmp_path: Path) -> None:
    doctor = run_doctor(tmp_path, env=fonts_conf(tmp_path))
    assert doctor.returncode == 1
    fonts, emoji = doctor.line("fonts"), doctor.line("emoji")
    assert fonts.startswith("FAIL") and "Latin: no font" in fonts
    assert "apt-get install fonts-liberation fonts-dejavu-core" in fonts
    assert emoji.startswith("FAIL") and "apt-get install fonts-noto-color-emoji" in emoji
    assert doctor.line("webgl").startswith("ok")


def test_oven_doctor_says_cjk_is_missing_when_only_latin_fonts_are_found(tmp_path: Path) -> None:
    latin = Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation")
    doctor = run_doctor(tmp_path, env=fonts_conf(tmp_path, *latin))
    assert doctor.returncode == 1
    fonts = doctor.line("fonts")
    assert fonts.startswith("FAIL") and "CJK: no font" in fonts and "Latin: no font" not in fonts
    assert "apt-get install fonts-wqy-microhei" in fonts
    assert doctor.line("emoji").startswith("FAIL")


def test_oven_doctor_says_emoji_is_not_in_colour_when_only_the_colour_emoji_font_is_missing(
        tmp_path: Path) -> None:
    dirs = [p for p in Path("/usr/share/fonts").glob("*/*") if p.is_dir() and p != EMOJI_FONT_DIR]
    doctor = run_doctor(tmp_path, env=fonts_conf(tmp_path, *dirs))
    assert doctor.returncode == 1
    assert doctor.line("fonts").startswith("ok")
    emoji = doctor.line("emoji")
    assert emoji.startswith("FAIL") and "apt-get install fonts-noto-color-emoji" in emoji


def test_oven_doctor_gives_up_on_a_chromium_that_never_starts_within_its_launch_timeout(
        tmp_path: Path) -> None:
    # Answers --version as Chromium does, then hangs where a browser would start.
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n"
                    "[ \"$1\" = --version ] && { echo 'Chromium 1.0 (hangs)'; exit 0; }\n"
                    "exec sleep 600\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    doctor = run_doctor(tmp_path, env={"OVEN_BROWSER__EXECUTABLE_PATH": str(fake),
                                       "OVEN_BROWSER__LAUNCH_TIMEOUT_S": "2"}, timeout=90)
    assert doctor.returncode == 1
    assert doctor.line("chromium").startswith("ok")
    render = doctor.line("render")
    assert render.startswith("FAIL") and "did not start" in render
    leftover = subprocess.run(["pgrep", "-f", f"{fake}"], capture_output=True, text=True)
    assert leftover.stdout == ""
