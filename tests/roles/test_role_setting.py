"""`[cluster] role` and `oven serve --role`: what an instance runs, named in config and flag,
and refused with the field named when it is not one of the three roles."""

from __future__ import annotations

from pathlib import Path

import pytest

from oven.config import ConfigError, load
from tests.test_cli import oven

EXIT_CONFIG = 2


def test_an_instance_runs_every_role_unless_told_otherwise() -> None:
    assert load(None, env={}).settings.cluster.role == "all"


@pytest.mark.parametrize("role", ["all", "api", "worker"])
def test_each_role_is_read_from_the_cluster_section(tmp_path: Path, role: str) -> None:
    path = tmp_path / "oven.toml"
    path.write_text(f'[cluster]\nrole = "{role}"\n')
    assert load(path, env={}).settings.cluster.role == role


@pytest.mark.parametrize("bad", ['"gateway"', '"API"', "1", '""'])
def test_a_role_that_is_not_one_of_the_three_is_refused_naming_the_field(
        tmp_path: Path, bad: str) -> None:
    path = tmp_path / "oven.toml"
    path.write_text(f"[cluster]\nrole = {bad}\n")
    with pytest.raises(ConfigError) as caught:
        load(path, env={})
    message = str(caught.value)
    assert "[cluster] role" in message and str(path) in message, message
    assert "'all', 'api' or 'worker'" in message, message


def test_the_role_can_come_from_the_environment(tmp_path: Path) -> None:
    assert load(None, env={"OVEN_CLUSTER__ROLE": "worker"}).settings.cluster.role == "worker"


def test_serve_refuses_a_bad_role_flag_naming_the_field_and_the_command_line(
        tmp_path: Path) -> None:
    ran = oven("serve", "--role", "gateway", "--port", "0", tmp_path=tmp_path, timeout=60)
    assert ran.returncode == EXIT_CONFIG, ran.stderr
    assert "[cluster] role" in ran.stderr and "command line" in ran.stderr, ran.stderr
    assert "'gateway'" in ran.stderr, ran.stderr
