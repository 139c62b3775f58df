"""Every metric the rules and the dashboard query is one a running `oven serve` exports."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.oven_process import OvenProcess

from .ops_kit import alerting_rules, dashboard, dashboard_exprs, run
from .promql import exposed_names, metric_names

# Series Prometheus records itself for every target: not something oven exports.
PROMETHEUS_OWN = {"up"}


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    oven = OvenProcess(tmp_path_factory.mktemp("ops-oven"), config={"browser": {"pages": 1}})
    oven.start()
    try:
        response = httpx.get(f"{oven.url}/metrics", timeout=10)
        response.raise_for_status()
        yield response.text
    finally:
        assert oven.stop() == 0  # stop() also asserts no child process is left


def unknown_metrics(exprs: list[tuple[str, str]], exposed: set[str]) -> dict[str, set[str]]:
    missing = {where: metric_names(expr) - exposed - PROMETHEUS_OWN for where, expr in exprs}
    return {where: names for where, names in missing.items() if names}


def test_every_metric_in_the_alerting_rules_is_exported(exposition: str) -> None:
    exprs = [(rule["alert"], rule["expr"]) for rule in alerting_rules()]
    assert unknown_metrics(exprs, exposed_names(exposition)) == {}


def test_every_metric_in_the_dashboard_is_exported(exposition: str) -> None:
    exprs = dashboard_exprs()
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            definition = variable["definition"]
            metric = re.fullmatch(r"label_values\((\w+),\s*\w+\)", definition)
            assert metric, f"unexpected variable query {definition!r}"
            exprs.append((f"variable {variable['name']!r}", metric.group(1)))
    assert unknown_metrics(exprs, exposed_names(exposition)) == {}


def test_the_checks_see_oven_metrics_at_all(exposition: str) -> None:
    # Guards the two tests above against passing on an exposition they failed to parse.
    exposed = exposed_names(exposition)
    assert {"oven_healthy", "oven_stage_seconds_bucket", "oven_grabs_total"} <= exposed


def test_promtool_finds_no_problem_in_the_live_exposition(exposition: str, promtool: str) -> None:
    result = run([promtool, "check", "metrics"], stdin=exposition)
    assert result.returncode == 0, result.stdout + result.stderr
