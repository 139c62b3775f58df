"""One grab path: one function builds a result URL, and HTTP and `oven grab` share one client."""

from __future__ import annotations

import ast
from pathlib import Path

from oven.actors.grab_queue import GrabView, record_view
from oven.grabs import GrabResult, result_url
from oven.jobs import JobState
from oven.store import JobRecord

OVEN = Path(__file__).resolve().parent.parent / "oven"

# The grab client is the one caller of these actors on a grab's behalf.
CLIENT_FRONTS = ("http/_grabs.py", "http/_showcase.py", "_grab_cli.py")
ASKED_BY_THE_CLIENT = ("Submit", "GetJob", "WaitFor", "Cancel", "Locate")


def _names_imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            for alias in node.names}


def test_http_routes_and_the_cli_ask_the_actors_only_through_the_grab_client() -> None:
    reaching = {front: sorted(_names_imported(OVEN / front) & set(ASKED_BY_THE_CLIENT))
                for front in CLIENT_FRONTS}
    assert reaching == {front: [] for front in CLIENT_FRONTS}


def test_a_result_url_is_the_storage_url_or_the_path_this_service_serves() -> None:
    assert result_url("grabs/ab/abc.png") == "/results/grabs/ab/abc.png"
    assert result_url("grabs/ab/abc.png", "https://cdn.example/abc.png") == \
        "https://cdn.example/abc.png"
    assert GrabResult(storage_key="grabs/ab/abc.png", size=3).public_url == \
        "/results/grabs/ab/abc.png"
    assert GrabResult(frames=1, frozen=False, ready="ok").public_url is None  # parked upload


def test_the_queues_view_of_a_job_is_the_json_of_a_grab_view() -> None:
    record = JobRecord.queued(id="j1", capture_key="k" * 64, lane="interactive",
                              request={"piece": "still", "format": "png",
                                       "target_url": "file:///x", "cancel_digest": "d"},
                              deadline_s=60, piece="still", now=1000.0)
    for result in (None,
                   {"frames": 1, "frozen": False, "ready": "ok"},
                   {"storage_key": "grabs/kk/k.png", "size": 10, "content_type": "image/png",
                    "url": None, "frames": 1, "frozen": False, "ready": "ok",
                    "blocked_requests": ["private http://10.0.0.1/"]}):
        done = record.model_copy(update={"state": JobState.COMPLETE, "result": result,
                                         "timings": {"encode": 0.25}})
        view = record_view(done)
        assert "target_url" not in view["request"] and "cancel_digest" not in view["request"]
        assert GrabView.model_validate(view).as_json() == view
