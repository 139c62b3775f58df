"""The systemd unit sets what keeps oven alive, bounded and leaving nothing behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .ops_kit import UNIT_FILE, run


def unit_settings(text: str) -> dict[str, dict[str, list[str]]]:
    """section -> key -> values (a key may repeat, as Environment= does)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"setting outside a section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture
def service() -> dict[str, list[str]]:
    return unit_settings(UNIT_FILE.read_text())["Service"]


def test_unit_sets_memory_limits_without_swap(service: dict[str, list[str]]) -> None:
    assert service["MemoryHigh"][0] and service["MemoryMax"][0]
    assert service["MemorySwapMax"] == ["0"]


def test_unit_restarts_always_and_kills_the_whole_control_group(
    service: dict[str, list[str]],
) -> None:
    assert service["Restart"] == ["always"]
    assert service["KillMode"] == ["control-group"]


def test_unit_starts_serve_reloads_with_sighup_and_raises_the_file_limit(
    service: dict[str, list[str]],
) -> None:
    assert service["ExecStart"][0].endswith("oven serve")
    assert "-HUP" in service["ExecReload"][0]
    assert int(service["LimitNOFILE"][0]) >= 65536


def test_unit_hardening_keeps_the_data_dir_writable(service: dict[str, list[str]]) -> None:
    assert service["NoNewPrivileges"] == ["yes"]
    assert service["PrivateTmp"] == ["yes"]
    assert service["ProtectSystem"] == ["strict"]
    assert "/var/lib/oven" in service["ReadWritePaths"][0].split()
    assert service["WorkingDirectory"] == ["/var/lib/oven"]
    # These break Chromium's JIT or its sandbox; see the comment in the unit.
    assert "MemoryDenyWriteExecute" not in service
    assert "RestrictNamespaces" not in service


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify_finds_no_problem(tmp_path: Path) -> None:
    # verify insists ExecStart exists; /opt/oven is where the install steps put it, not here.
    unit = tmp_path / "oven.service"
    unit.write_text(UNIT_FILE.read_text().replace("/opt/oven/.venv/bin/oven", "/bin/true"))
    result = run(["systemd-analyze", "verify", unit])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Unknown or misspelt keys are only warnings ("... ignoring"), so look for them too.
    assert "ignoring" not in output.lower() and "unknown" not in output.lower(), output
