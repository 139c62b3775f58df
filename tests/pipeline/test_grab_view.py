"""A grab's JSON answers are the models /openapi.json documents: every key, nested ones too."""

from __future__ import annotations

from typing import Any

import httpx
from jsonschema import Draft202012Validator

from tests.oven_process import OvenProcess

from .conftest import ADMIN_TOKEN
from .grab_client import submit, wait_for_job


def _check(document: dict[str, Any], model: str, answer: dict[str, Any]) -> None:
    """Valid against the model, and no key the document does not name (at any depth)."""
    root = {"$ref": f"#/components/schemas/{model}", "components": document["components"]}
    errors = [e.message for e in Draft202012Validator(root).iter_errors(answer)]
    assert not errors, (model, errors, answer)
    schemas = document["components"]["schemas"]
    undocumented = set(answer) - set(schemas[model]["properties"])
    assert not undocumented, (model, sorted(undocumented))


def test_a_grabs_answers_are_exactly_the_documented_view_with_a_typed_result(
        shared_oven: OvenProcess) -> None:
    document = httpx.get(f"{shared_oven.url}/openapi.json", timeout=10).json()
    accepted = submit(shared_oven, piece="still", format="png", width=211, height=113)
    _check(document, "GrabAccepted", accepted)

    view = wait_for_job(shared_oven, accepted["id"])
    assert view["state"] == "complete", view
    _check(document, "GrabView", view)
    _check(document, "GrabResult", view["result"])
    assert {"storage_key", "size", "content_type", "frames"} <= set(view["result"])

    # A final job's cancel answers its view, unchanged.
    cancelled = httpx.delete(f"{shared_oven.url}/grabs/{accepted['id']}",
                             headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json() == view


def test_a_cached_answer_names_a_result_url_that_serves_the_stored_file(
        shared_oven: OvenProcess) -> None:
    body = {"piece": "still", "format": "png", "width": 213, "height": 117}
    first = submit(shared_oven, **body)
    view = wait_for_job(shared_oven, first["id"])
    assert view["state"] == "complete", view

    cached = httpx.post(f"{shared_oven.url}/grabs", json=body, timeout=30)
    assert cached.status_code == 200, cached.text
    answer = cached.json()
    assert answer["cached"] is True and answer["id"] is None
    assert answer["result_url"] == f"/results/{view['result']['storage_key']}"
    stored = httpx.get(f"{shared_oven.url}{answer['result_url']}", timeout=30)
    assert stored.status_code == 200 and stored.headers["content-type"] == "image/png"
    assert len(stored.content) == view["result"]["size"]


def test_a_long_poll_answers_once_the_grab_is_final(shared_oven: OvenProcess) -> None:
    accepted = submit(shared_oven, piece="anim", format="webp", frames=8, width=133, height=71)
    answer = httpx.get(f"{shared_oven.url}/grabs/{accepted['id']}", params={"wait": 60},
                       timeout=90)
    assert answer.status_code == 200 and answer.json()["state"] == "complete", answer.text


def test_a_long_poll_gives_up_after_its_seconds_with_the_view_as_it_stands(
        shared_oven: OvenProcess) -> None:
    # never-ready waits its whole ready timeout (10 s) before it is captured.
    accepted = submit(shared_oven, piece="never-ready", format="png", width=97, height=61)
    answer = httpx.get(f"{shared_oven.url}/grabs/{accepted['id']}", params={"wait": 0.5},
                       timeout=30)
    assert answer.status_code == 200 and answer.json()["state"] in ("queued", "running")
    wait_for_job(shared_oven, accepted["id"])


def test_a_long_poll_of_nonsense_seconds_is_a_422(shared_oven: OvenProcess) -> None:
    accepted = submit(shared_oven, piece="still", format="png", width=99, height=61)
    for raw in ("abc", "0", "-1", "nan", "inf", "100000"):
        answer = httpx.get(f"{shared_oven.url}/grabs/{accepted['id']}", params={"wait": raw},
                           timeout=30)
        assert answer.status_code == 422, (raw, answer.text)
        assert "wait" in answer.json()["error"]["message"]
