"""Where the ops kit lives and how the checks read it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml  # PyYAML: present through the test extra (moto's `responses` depends on it)

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_CONFIG = REPO / "config" / "prometheus" / "prometheus.yml"
RULES_FILE = REPO / "config" / "prometheus" / "oven-rules.yml"
RULES_TEST = Path(__file__).parent / "rules_test.yml"
DASHBOARD_FILE = REPO / "config" / "grafana" / "oven.json"
UNIT_FILE = REPO / "config" / "systemd" / "oven.service"


def run(args: list[str | Path], *, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a checker with a time bound, keeping its output for the assertion message."""
    return subprocess.run([str(a) for a in args], input=stdin, capture_output=True, text=True,
                          timeout=60, check=False)


def alerting_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return loaded


def dashboard_exprs() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every Prometheus annotation query."""
    board = dashboard()
    exprs = [(f"panel {p['title']!r}", t["expr"]) for p in board["panels"] for t in p["targets"]]
    exprs += [(f"annotation {a['name']!r}", a["expr"])
              for a in board["annotations"]["list"] if "expr" in a]
    return exprs
