"""The Grafana dashboard imports: valid JSON, unique panel ids, a query behind every panel."""

from __future__ import annotations

from collections import Counter

from .ops_kit import dashboard

DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}


def test_dashboard_parses_and_declares_its_prometheus_datasource_variable() -> None:
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 41
    assert board["uid"] and board["title"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"


def test_panel_ids_are_unique() -> None:
    ids = Counter(panel["id"] for panel in dashboard()["panels"])
    assert [pid for pid, n in ids.items() if n > 1] == []


def test_every_panel_has_the_datasource_and_a_query() -> None:
    for panel in dashboard()["panels"]:
        title = panel["title"]
        assert panel.get("datasource") == DATASOURCE, title
        assert panel.get("targets"), f"{title} has no target"
        for target in panel["targets"]:
            assert target.get("expr", "").strip(), f"{title}: target without expr"
            assert target.get("datasource", DATASOURCE) == DATASOURCE, title
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), f"{title}: duplicate refId"


def test_panels_do_not_overlap_on_the_grid() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_pty_sessions_have_panels() -> None:
    exprs = [t["expr"] for panel in dashboard()["panels"] for t in panel["targets"]]
    assert any("oven_pty_sessions" in e for e in exprs)
    assert any("oven_pty_bytes_total" in e for e in exprs)
