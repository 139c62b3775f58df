"""The PromQL metric-name extractor the other ops checks rely on."""

from __future__ import annotations

import pytest

from .promql import exposed_names, metric_names


@pytest.mark.parametrize(("expr", "expected"), [
    ("oven_healthy == 0", {"oven_healthy"}),
    ('up{job="oven"} == 0', {"up"}),
    ("sum by (instance, actor) (increase(oven_actor_restarts_total[10m])) > 3",
     {"oven_actor_restarts_total"}),
    ('histogram_quantile(0.95, sum by (le, stage) '
     '(rate(oven_stage_seconds_bucket{instance=~"$instance"}[$__rate_interval])))',
     {"oven_stage_seconds_bucket"}),
    ("oven_pages_in_use/oven_pool_size", {"oven_pages_in_use", "oven_pool_size"}),
    ('(sum(increase(oven_grabs_total{outcome="failed"}[15m])) / sum(increase(oven_grabs_total'
     '[15m]))) > 0.2\nand sum without (format) (increase(oven_grabs_total[15m])) >= 1e1',
     {"oven_grabs_total"}),
    ('clamp_min(max(oven_memory_budget_bytes offset 5m), 1) - on (instance) group_left (file) '
     'oven_cgroup_memory_bytes{file="memory.current"} > bool 0',
     {"oven_memory_budget_bytes", "oven_cgroup_memory_bytes"}),
    ('label_replace(oven_mailbox_depth, "who", "$1", "actor", "(.*)")', {"oven_mailbox_depth"}),
    ('{__name__="oven_encoder_running"} > 0', {"oven_encoder_running"}),
    ("rate(oven_cache_total[5m:1m]) > Inf or vector(0)", {"oven_cache_total"}),
])
def test_metric_names_finds_every_selected_metric_and_nothing_else(
    expr: str, expected: set[str]
) -> None:
    assert metric_names(expr) == expected


def test_label_values_in_strings_are_not_taken_for_metrics() -> None:
    assert metric_names('oven_uploads_total{outcome="error", actor=~"oven_x|rate"}') == {
        "oven_uploads_total"
    }


def test_exposed_names_maps_suffixes_back_to_their_family() -> None:
    text = "\n".join([
        "# HELP oven_stage_seconds Time spent per pipeline stage",
        "# TYPE oven_stage_seconds histogram",
        "# TYPE oven_grabs_total counter",
        "# TYPE oven_cache counter",
        "# TYPE oven_healthy gauge",
        "oven_healthy 1.0",
    ])
    names = exposed_names(text)
    assert {"oven_stage_seconds_bucket", "oven_stage_seconds_sum", "oven_stage_seconds_count",
            "oven_grabs_total", "oven_cache_total", "oven_healthy"} <= names
    assert "oven_healthy_total" not in names
    assert "oven_grabs_total_bucket" not in names
