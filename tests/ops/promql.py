"""Metric names in PromQL expressions and in a Prometheus text exposition."""

from __future__ import annotations

import re

# Words that may stand where a metric name could: aggregations, functions (also caught by the
# "followed by (" rule, listed so a stray space or line break cannot turn them into metrics),
# binary operators, modifiers and label names that appear bare in grouping clauses.
NOT_METRICS = frozenset({
    "sum", "avg", "min", "max", "count", "stddev", "stdvar", "group", "topk", "bottomk",
    "quantile", "count_values", "limitk", "rate", "irate", "increase", "delta", "idelta", "deriv",
    "predict_linear", "resets", "changes", "histogram_quantile", "histogram_count",
    "histogram_sum", "histogram_fraction", "holt_winters", "abs", "absent", "absent_over_time",
    "ceil", "floor", "round", "exp", "ln", "log2", "log10", "sqrt", "sgn", "clamp", "clamp_min",
    "clamp_max", "scalar", "vector", "time", "timestamp", "label_replace", "label_join", "sort",
    "sort_desc", "minute", "hour", "day_of_week", "day_of_month", "day_of_year", "days_in_month",
    "month", "year", "avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
    "count_over_time", "quantile_over_time", "stddev_over_time", "stdvar_over_time",
    "last_over_time", "present_over_time", "by", "without", "on", "ignoring", "group_left",
    "group_right", "bool", "and", "or", "unless", "offset", "atan2", "le", "inf", "nan"
})

_NAME_MATCHER = re.compile(r'__name__\s*=\s*"([^"]+)"')
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
# What is left of a selector: an identifier that is not part of a longer word or a number
# (`1e3`, `5m`) and is not called like a function (`rate(`).
_IDENTIFIER = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    named = set(_NAME_MATCHER.findall(expr))  # {__name__="x"} selects x without naming it
    text = _STRING.sub('""', expr)
    text = _GRAFANA_VARIABLE.sub("0", text)
    # Label matchers, range/subquery durations and grouping label lists hold label names and
    # durations, never metric names: blank them out before looking for identifiers.
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    found = {name for name in _IDENTIFIER.findall(text) if name.lower() not in NOT_METRICS}
    return found | named


# prometheus_client writes a counter's TYPE line under its exposed name (`x_total`) in recent
# versions and under the bare family name (`x`) in older ones; both are accepted below.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
}
_TYPE_LINE = re.compile(r"^# TYPE (\S+) (\S+)\s*$", re.MULTILINE)


def exposed_names(exposition: str) -> set[str]:
    """Every series name a `/metrics` text can carry, from its `# TYPE` lines."""
    names: set[str] = set()
    for family, kind in _TYPE_LINE.findall(exposition):
        names.add(family)
        names.update(family + suffix for suffix in _SUFFIXES.get(kind, ()))
    return names
