"""Each grab concept is defined once and used from there: result URLs, formats, lanes, leases.

Source checks where the defect is a second definition (it behaves the same until the two
drift apart), behaviour checks where the one definition carries a rule.
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
OVEN = ROOT / "oven"
GRAB_QUEUE = OVEN / "actors" / "grab_queue"


def _strings(path: pathlib.Path) -> list[tuple[int, str]]:
    """Every string literal in a module, f-string parts included, with its line."""
    return [(node.lineno, node.value) for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def test_only_result_url_builds_a_results_path() -> None:
    allowed = {OVEN / "grabs" / "_result.py"}
    found = [f"{path.relative_to(ROOT)}:{line}"
             for path in sorted(OVEN.rglob("*.py")) if path not in allowed
             for line, text in _strings(path) if text.startswith("/results/")]
    assert found == []


def test_the_grab_queue_carries_the_format_instead_of_rebuilding_it_from_its_value() -> None:
    found = [f"{path.relative_to(ROOT)}:{node.lineno}"
             for path in sorted(GRAB_QUEUE.glob("*.py"))
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
             and node.func.id == "Format"]
    assert found == []


def test_the_grab_queue_leaves_clearing_a_lease_to_the_stores_lease_policy() -> None:
    # oven.store's lease policy clears lease_expires_at (and, back to queued, the owner) on
    # every transition out of a leased state, on both backends (tests/store/test_leases.py).
    found = [f"{path.relative_to(ROOT)}:{node.lineno} {keyword.arg}=None"
             for path in sorted(GRAB_QUEUE.glob("*.py"))
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Call)
             for keyword in node.keywords
             if keyword.arg in ("owner", "lease_expires_at")
             and isinstance(keyword.value, ast.Constant) and keyword.value.value is None]
    assert found == []


def test_lanes_are_defined_once_in_the_lane_table() -> None:
    from oven.grabs import QueueSettings
    from oven.lanes import LANES, Lane
    from oven.store import JobRecord

    assert set(LANES) == set(Lane)
    assert sorted(rule.order for rule in LANES.values()) == list(range(len(Lane)))
    for rule in LANES.values():
        assert rule.reserved is None or rule.reserved in QueueSettings.model_fields
    assert JobRecord.model_fields["lane"].annotation is Lane
    # no second list of lane names or of their order
    found = [f"{path.relative_to(ROOT)}:{line}"
             for path in sorted(OVEN.rglob("*.py")) if path != OVEN / "lanes.py"
             for line, text in _strings(path) if text == "background"
             and "http" not in path.parts and "showcase" not in path.parts]
    assert found == []


def test_a_lane_claims_once_the_slots_reserved_by_the_lanes_before_it_are_free() -> None:
    from oven.grabs import QueueSettings
    from oven.lanes import Lane, claimable_lanes

    both, first = [Lane.INTERACTIVE, Lane.BACKGROUND], [Lane.INTERACTIVE]
    one = QueueSettings(interactive_reserved=1)
    assert claimable_lanes(free=2, pages=4, queue=one) == both
    assert claimable_lanes(free=1, pages=4, queue=one) == first
    # the last lane always gets a page: at most pages - 1 slots are reserved
    assert claimable_lanes(free=1, pages=1, queue=one) == both
    two = QueueSettings(interactive_reserved=2)
    assert claimable_lanes(free=2, pages=2, queue=two) == both
    assert claimable_lanes(free=1, pages=2, queue=two) == first
    none = QueueSettings(interactive_reserved=0)
    assert claimable_lanes(free=1, pages=4, queue=none) == both
