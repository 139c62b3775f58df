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

