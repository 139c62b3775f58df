"""The Prometheus scrape config and alerting rules load in promtool and behave as written."""

from __future__ import annotations

from .ops_kit import PROMETHEUS_CONFIG, RULES_FILE, RULES_TEST, alerting_rules, run


def test_promtool_accepts_the_scrape_config_and_finds_the_rules(promtool: str) -> None:
    result = run([promtool, "check", "config", PROMETHEUS_CONFIG])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def test_promtool_accepts_the_alerting_rules(promtool: str) -> None:
    result = run([promtool, "check", "rules", RULES_FILE])
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_fire_on_synthetic_series_and_stay_quiet_below_threshold(promtool: str) -> None:
    result = run([promtool, "test", "rules", RULES_TEST])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_for_a_severity_and_a_description_a_person_can_act_on() -> None:
    rules = alerting_rules()
    assert len(rules) >= 10
    for rule in rules:
        name = rule["alert"]
        assert rule.get("for"), f"{name} has no `for:`"
        assert rule.get("labels", {}).get("severity") in {"warning", "critical"}, name
        annotations = rule.get("annotations", {})
        assert annotations.get("summary"), f"{name} has no summary"
        assert len(annotations.get("description", "")) > 80, f"{name}: description too thin"


def test_every_alert_the_ops_brief_lists_has_a_rule() -> None:
    exprs = " ".join(rule["expr"] for rule in alerting_rules())
    for metric in ["oven_queue_depth", "oven_memory_pressure_state", "oven_actor_restarts_total",
                   "oven_actor_up", "oven_browser_restarts_total", "oven_upload_pending",
                   "oven_mailbox_rejected_total", "oven_healthy", "oven_grabs_total"]:
        assert metric in exprs, f"no alert on {metric}"
