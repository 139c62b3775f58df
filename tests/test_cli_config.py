"""`oven config show|check|defaults` as a user runs them, in child processes: the effective
values with their sources, and a bad file refused with the file and key named and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.test_cli import oven

EXIT_CONFIG = 2  # README Operations: "2 bad config"
SECRET = "hunter2-hunter2-hunter2"


def config_file(tmp_path: Path, text: str, name: str = "my.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def shown_line(stdout: str, section: str, key: str) -> str:
    """The `key = value  # source` line of `section` in `oven config show`'s output."""
    lines = stdout.splitlines()
    start = lines.index(f"[{section}]")
    for line in lines[start + 1:]:
        if line.startswith("["):
            break
        if line.startswith(f"{key} = "):
            return line
    raise AssertionError(f"no line for [{section}] {key} in:\n{stdout}")


def test_config_show_prints_the_effective_values_each_with_its_source_and_secrets_masked(
        tmp_path: Path) -> None:
    path = config_file(tmp_path, "[browser]\npages = 3\njobs_per_tab = 4\n"
                                 f'[server]\nadmin_token = "{SECRET}"\n')
    shown = oven("config", "show", "--config", str(path), tmp_path=tmp_path,
                 env={"OVEN_BROWSER__PAGES": "5", "OVEN_SUPERVISOR__INTENSITY": "9"})
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert out.startswith(f"# effective configuration (file: {path})"), out[:200]
    # The environment wins over the file, and each value names where it came from.
    assert shown_line(out, "browser", "pages") == "pages = 5  # env OVEN_BROWSER__PAGES"
    assert shown_line(out, "browser", "jobs_per_tab") == f"jobs_per_tab = 4  # file {path}"
    assert shown_line(out, "supervisor", "intensity") == (
        "intensity = 9  # env OVEN_SUPERVISOR__INTENSITY")
    assert shown_line(out, "queue", "max_attempts").endswith("  # default")
    assert SECRET not in out
    assert shown_line(out, "server", "admin_token") == (
        f'admin_token = "********"  # file {path}')
    # What is printed is itself TOML holding the effective values, every section of the schema.
    effective = tomllib.loads(out)
    assert effective["browser"]["pages"] == 5 and effective["browser"]["jobs_per_tab"] == 4
    assert effective["supervisor"]["intensity"] == 9
    defaults = tomllib.loads(oven("config", "defaults", tmp_path=tmp_path).stdout)
    assert set(effective) == set(defaults)
    assert effective["queue"] == defaults["queue"]


def test_config_show_reads_the_file_named_by_oven_config(tmp_path: Path) -> None:
    path = config_file(tmp_path, "[queue]\nmax_queued = 17\n")
    # tests.test_cli's runner drops OVEN_CONFIG, the very variable this test sets.
    shown = subprocess.run([sys.executable, "-m", "oven", "config", "show"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, "OVEN_CONFIG": str(path)})
    assert shown.returncode == 0, shown.stderr
    assert shown_line(shown.stdout, "queue", "max_queued") == f"max_queued = 17  # file {path}"


@pytest.mark.parametrize(("text", "message"), [
    ("[browser]\npagez = 3\n", "unknown key [browser] pagez; did you mean 'pages'?"),
    ("[browzer]\npages = 3\n", "browzer"),
    ("[browser]\npages = 0\n",
     "[browser] pages: input should be greater than or equal to 1 (got 0)"),
    ('[queue]\nmax_queued = "many"\n', "[queue] max_queued: input should be a valid integer"),
    ("[browser\npages = 3\n", "not valid TOML"),
])
def test_an_invalid_file_is_refused_naming_the_file_and_key_with_exit_2(
        tmp_path: Path, text: str, message: str) -> None:
    path = config_file(tmp_path, text)
    for args in (["config", "show", "--config", str(path)], ["config", "check", str(path)]):
        refused = oven(*args, tmp_path=tmp_path)
        assert refused.returncode == EXIT_CONFIG, (args, refused)
        assert refused.stdout == "", (args, refused.stdout[:300])
        [line] = refused.stderr.splitlines()
        assert line.startswith(f"config error: {path}: "), (args, line)
        assert message in line, (args, line)


def test_a_bad_environment_override_is_refused_naming_the_variable(tmp_path: Path) -> None:
    refused = oven("config", "show", tmp_path=tmp_path, env={"OVEN_BROWSER__PAGES": "zero"})
    assert refused.returncode == EXIT_CONFIG
    assert refused.stdout == ""
    assert refused.stderr.startswith("config error: environment OVEN_BROWSER__PAGES: "
                                     "[browser] pages: input should be a valid integer"), (
        refused.stderr)


def test_a_missing_file_is_refused_with_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    refused = oven("config", "show", "--config", str(missing), tmp_path=tmp_path)
    assert refused.returncode == EXIT_CONFIG
    assert refused.stderr.strip() == f"config error: {missing}: config file not found"


def test_config_check_passes_a_valid_file_and_the_printed_defaults(tmp_path: Path) -> None:
    path = config_file(tmp_path, "[browser]\npages = 2\n")
    checked = oven("config", "check", str(path), tmp_path=tmp_path)
    assert (checked.returncode, checked.stdout) == (0, f"{path}: ok\n"), checked.stderr
    defaults = config_file(tmp_path, oven("config", "defaults", tmp_path=tmp_path).stdout,
                           name="defaults.toml")
    checked = oven("config", "check", str(defaults), tmp_path=tmp_path)
    assert (checked.returncode, checked.stdout) == (0, f"{defaults}: ok\n"), checked.stderr
