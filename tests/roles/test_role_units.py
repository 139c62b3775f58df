"""The systemd unit of each role: it starts `oven serve --role <role>`, keeps oven.service's
restart and kill rules, bounds memory for what the role runs, and systemd finds no problem."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.ops.ops_kit import UNIT_FILE, run
from tests.ops.test_systemd import unit_settings

UNITS = {"api": UNIT_FILE.with_name("oven-api.service"),
         "worker": UNIT_FILE.with_name("oven-worker.service")}


def megabytes(value: str) -> int:
    assert value.endswith("M"), value
    return int(value[:-1])


@pytest.mark.parametrize("role", sorted(UNITS))
def test_each_role_unit_starts_its_role_and_restarts_and_stops_like_the_main_unit(
        role: str) -> None:
    service = unit_settings(UNITS[role].read_text())["Service"]
    assert service["ExecStart"][0].endswith(f"oven serve --role {role}")
    assert service["Restart"] == ["always"]
    assert service["RestartPreventExitStatus"] == ["2"]
    assert service["KillMode"] == ["control-group"]
    assert "-HUP" in service["ExecReload"][0]
    assert service["MemorySwapMax"] == ["0"]
    assert "/var/lib/oven" in service["ReadWritePaths"][0].split()


def test_the_api_unit_is_bounded_far_below_the_worker_which_holds_chromium() -> None:
    api = unit_settings(UNITS["api"].read_text())["Service"]
    worker = unit_settings(UNITS["worker"].read_text())["Service"]
    assert megabytes(api["MemoryMax"][0]) * 3 <= megabytes(worker["MemoryMax"][0])
    assert "MemoryDenyWriteExecute" not in worker and "RestrictNamespaces" not in worker


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
@pytest.mark.parametrize("role", sorted(UNITS))
def test_systemd_analyze_verify_finds_no_problem_in_a_role_unit(role: str,
                                                                 tmp_path: Path) -> None:
    unit = tmp_path / UNITS[role].name
    unit.write_text(UNITS[role].read_text().replace("/opt/oven/.venv/bin/oven serve", "/bin/true"))
    result = run(["systemd-analyze", "verify", unit])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "ignoring" not in output.lower() and "unknown" not in output.lower(), output
