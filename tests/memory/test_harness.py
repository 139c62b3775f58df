"""`oven mem -- COMMAND`, run as `python -m oven.memory mem ...` in a real child process."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from oven.memory._report import parse_size

MiB = 1024 * 1024
RESULT_KEYS = {
    "label", "command", "exit_status", "duration_s", "headline_peak_bytes", "headline_source",
    "sampled_peak_pss_bytes", "sampled_peak_rss_bytes", "peak_at_s", "peak_stage", "groups",
    "stages", "top_processes", "budget_bytes", "over_budget", "samples", "interval_ms",
    "leftovers_killed", "files",
}
GROUPS = ("oven", "browser", "renderer", "driver", "encoder", "pty", "other")


def _alloc(mib: int, hold_s: float = 1.0, *, before: str = "", after: str = "") -> str:
    """Python code that allocates and touches `mib` MiB, holds it, then frees it."""
    return (f"import sys, time\n{before}\n"
            f"b = b'\\x01' * ({mib} * 1024 * 1024)\n"
            f"time.sleep({hold_s})\n"
            f"del b\n{after}\n")


def oven_mem(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oven.memory", "mem", "--out", str(tmp_path / "mem"), *args],
        capture_output=True, text=True, timeout=timeout, cwd=tmp_path,
    )


def result_of(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = [line for line in done.stdout.splitlines() if line.startswith("[OVEN-MEM RESULT] ")]
    assert len(lines) == 1, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(lines[0].removeprefix("[OVEN-MEM RESULT] "))
    return result


def test_a_successful_command_reports_its_peak_with_every_documented_key(
    tmp_path: Path, token: str
) -> None:
    done = oven_mem(tmp_path, "--label", "alloc", "--", sys.executable, "-c", _alloc(120),
                    token)
    assert done.returncode == 0, done.stderr
    result = result_of(done)
    assert set(result) == RESULT_KEYS
    assert result["label"] == "alloc"
    assert result["command"][-1] == token
    assert result["exit_status"] == 0
    assert 1.0 <= result["duration_s"] < 10
    assert result["headline_source"] in ("cgroup.memory.peak", "sampled_pss")
    if result["headline_source"] == "sampled_pss":
        assert result["headline_peak_bytes"] == result["sampled_peak_pss_bytes"]
    assert 120 * MiB <= result["sampled_peak_pss_bytes"] <= result["sampled_peak_rss_bytes"]
    assert set(result["groups"]) == set(GROUPS)
    assert result["groups"]["other"] == result["sampled_peak_pss_bytes"]
    assert result["stages"] == {}
    top = result["top_processes"][0]
    assert set(top) == {"pid", "group", "pss_bytes", "rss_bytes", "command"}
    assert top["group"] == "other" and top["command"].startswith(sys.executable)
    assert result["budget_bytes"] is None and result["over_budget"] is False
    assert result["samples"] >= 3 and result["interval_ms"] == 250
    assert result["leftovers_killed"] == []
    # The human summary goes to stderr, with the headline in MiB.
    assert re.search(r"peak \d+\.\d MiB \((cgroup\.memory\.peak|sampled_pss)\)", done.stderr)
    assert Path(result["files"]["result"]).name == "result-alloc.json"
    assert json.loads(Path(result["files"]["result"]).read_text()) == result


def test_the_timeline_csv_has_the_documented_columns(tmp_path: Path, token: str) -> None:
    done = oven_mem(tmp_path, "--label", "csv", "--interval-ms", "100", "--",
                    sys.executable, "-c", _alloc(40, 0.6), token)
    assert done.returncode == 0, done.stderr
    with (tmp_path / "mem" / "timeline-csv.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["t_s", "total_rss", "total_pss", *(f"{g}_pss" for g in GROUPS),
                             "stage"]
    assert len(rows) == result_of(done)["samples"] >= 5
    assert max(int(r["total_pss"]) for r in rows) == result_of(done)["sampled_peak_pss_bytes"]
    times = [float(r["t_s"]) for r in rows]
    assert times == sorted(times)
    for row in rows:
        assert int(row["total_pss"]) == sum(int(row[f"{g}_pss"]) for g in GROUPS)


def test_sampled_rss_peak_is_within_15_percent_of_time_v(tmp_path: Path, token: str) -> None:
    if not Path("/usr/bin/time").exists():
        pytest.skip("GNU time is not installed (apt-get install time)")
    code = _alloc(200, 1.0)
    timed = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", code, token],
                           capture_output=True, text=True, timeout=60, check=True)
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", timed.stderr)
    assert match is not None, timed.stderr
    reference = int(match.group(1)) * 1024
    result = result_of(oven_mem(tmp_path, "--json-only", "--", sys.executable, "-c", code,
                                token))
    assert abs(result["sampled_peak_rss_bytes"] - reference) <= 0.15 * reference, (
        result["sampled_peak_rss_bytes"], reference)


def test_a_failing_command_passes_its_exit_status_through(tmp_path: Path, token: str) -> None:
    done = oven_mem(tmp_path, "--", "sh", "-c", "exit 7", token)
    assert done.returncode == 7
    assert result_of(done)["exit_status"] == 7


def test_a_command_killed_by_a_signal_exits_128_plus_the_signal(
    tmp_path: Path, token: str
) -> None:
    done = oven_mem(tmp_path, "--", "sh", "-c", "kill -9 $$", token)
    assert done.returncode == 137
    assert result_of(done)["exit_status"] == 137


def test_a_peak_over_the_budget_exits_3(tmp_path: Path, token: str) -> None:
    done = oven_mem(tmp_path, "--budget", "50M", "--", sys.executable, "-c", _alloc(100, 0.8),
                    token)
    assert done.returncode == 3, done.stderr
    result = result_of(done)
    assert result["budget_bytes"] == 50 * MiB and result["over_budget"] is True
    assert "OVER" in done.stderr


def test_a_peak_within_the_budget_exits_0(tmp_path: Path, token: str) -> None:
    done = oven_mem(tmp_path, "--budget", "1.5G", "--json-only", "--", "sh", "-c", "sleep 0.3",
                    token)
    assert done.returncode == 0, done.stderr
    assert result_of(done)["budget_bytes"] == int(1.5 * 1024 * MiB)
    assert done.stderr == ""  # --json-only: no summary


@pytest.mark.parametrize("args, message", [
    ([], "no COMMAND"),
    (["--"], "no COMMAND"),
    (["--budget", "lots", "--", "true"], "not a size"),
    (["--budget", "12X", "--", "true"], "not a size"),
])
def test_usage_errors_exit_2_with_a_clear_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = oven_mem(tmp_path, *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "[OVEN-MEM RESULT]" not in done.stdout


def test_a_command_that_cannot_start_exits_127(tmp_path: Path) -> None:
    done = oven_mem(tmp_path, "--", str(tmp_path / "no-such-program"))
    assert done.returncode == 127
    assert "cannot run" in done.stderr


def test_stage_markers_split_the_peaks_and_pass_through_unchanged(
    tmp_path: Path, token: str
) -> None:
    code = (
        "import sys, time\n"
        "print('[OVEN-MEM STAGE] small', flush=True)\n"
        "a = b'\\x01' * (20 * 1024 * 1024)\n"
        "time.sleep(0.8)\n"
        "print('[OVEN-MEM STAGE] big', file=sys.stderr, flush=True)\n"
        "b = b'\\x01' * (150 * 1024 * 1024)\n"
        "time.sleep(0.8)\n"
        "del b\n"
        "print('[OVEN-MEM STAGE] after', flush=True)\n"
        "time.sleep(0.8)\n"
        "print('plain output', flush=True)\n"
    )
    done = oven_mem(tmp_path, "--label", "stages", "--", sys.executable, "-c", code, token)
    assert done.returncode == 0, done.stderr
    assert "[OVEN-MEM STAGE] small\n" in done.stdout and "plain output\n" in done.stdout
    assert "[OVEN-MEM STAGE] big\n" in done.stderr
    result = result_of(done)
    stages = result["stages"]
    assert list(stages) == ["small", "big", "after"]
    assert set(stages["big"]) >= {"peak_pss_bytes"}
    assert stages["big"]["peak_pss_bytes"] >= 150 * MiB
    assert stages["small"]["peak_pss_bytes"] < 100 * MiB
    assert stages["after"]["peak_pss_bytes"] < 100 * MiB
    assert result["peak_stage"] == "big"
    assert stages["small"]["end_s"] == stages["big"]["start_s"]
    with (tmp_path / "mem" / "timeline-stages.csv").open() as f:
        seen = {row["stage"] for row in csv.DictReader(f)}
    assert seen - {""} == {"small", "big", "after"}  # "" before the first marker


def test_rules_files_name_custom_groups(tmp_path: Path, token: str) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(f'"{token}-worker" = "worker"\n')
    done = oven_mem(tmp_path, "--rules", str(rules), "--label", "rules", "--",
                    "bash", "-c", f"exec -a {token}-worker sleep 0.6", token)
    assert done.returncode == 0, done.stderr
    result = result_of(done)
    assert result["groups"]["worker"] > 0
    with (tmp_path / "mem" / "timeline-rules.csv").open() as f:
        assert "worker_pss" in next(csv.reader(f))
    bad = tmp_path / "bad.json"
    bad.write_text('{"(": "worker"}')
    done = oven_mem(tmp_path, "--rules", str(bad), "--", "true")
    assert done.returncode == 2 and "pattern" in done.stderr


def test_processes_left_running_are_killed_even_when_they_daemonized(
    tmp_path: Path, token: str
) -> None:
    code = ("import os, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            "        time.sleep(60)\n"
            "    os._exit(0)\n"
            "time.sleep(0.5)\n")
    done = oven_mem(tmp_path, "--", "sh", "-c",
                    f"sleep 60 & {sys.executable} -c '{code}' {token}", token)
    assert done.returncode == 0, done.stderr
    result = result_of(done)
    assert len(result["leftovers_killed"]) == 2  # the background sleep and the daemon
    # (the token fixture checks that nothing carrying our token survived)


def test_sizes_parse_with_binary_units() -> None:
    assert parse_size("500M") == 500 * MiB
    assert parse_size("1.5G") == 1536 * MiB
    assert parse_size("64k") == 65536
    assert parse_size("2GiB") == 2048 * MiB
    assert parse_size("1234") == 1234
    with pytest.raises(ValueError):
        parse_size("-1M")


def test_help_documents_the_result_keys() -> None:
    done = subprocess.run([sys.executable, "-m", "oven.memory", "mem", "--help"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    for key in ("headline_source", "sampled_peak_pss_bytes", "top_processes", "over_budget"):
        assert key in done.stdout
