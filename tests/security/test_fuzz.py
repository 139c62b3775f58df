"""Schemathesis against /openapi.json of a real `oven serve`: every route, generated inputs, no
5xx, and afterwards no actor restarted and no process leaked.

`make test` runs FUZZ_EXAMPLES (default 40; ~1 min on 2 cores) examples per route; `make soak` sets
OVEN_FUZZ_EXAMPLES higher.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.oven_process import OvenProcess

from .conftest import ADMIN_TOKEN

FUZZ_EXAMPLES = int(os.environ.get("OVEN_FUZZ_EXAMPLES", "40"))


def _operations(oven: OvenProcess) -> list[Any]:
    document = httpx.get(f"{oven.url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.base_url = oven.url
    return [result.ok() for result in schema.get_all_operations()]


def _refusal_problem(response: Any) -> str | None:
    """What is wrong with a 4xx answer, measured against `{"error": {"code", "message"}}`."""
    try:
        body = response.json()
    except ValueError:
        return "not JSON"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "no error object"
    if not (isinstance(error.get("code"), str) and isinstance(error.get("message"), str)):
        return "error without a string code and message"
    return None


def test_every_generated_request_is_answered_without_a_5xx_and_refused_with_a_json_error(
        edge_oven: OvenProcess) -> None:
    # One test looping over the operations: the schema exists only once the service runs. The
    # after-fuzzing checks are in the same test so that they never depend on test order.
    failures: list[str] = []
    operations = _operations(edge_oven)
    assert len(operations) >= 15, [op.label for op in operations]
    answered: dict[int, int] = {}
    for operation in operations:
        if operation.path.startswith("/admin/faults"):
            continue  # crashing actors on request is its purpose (and it is off here)

        @given(case=operation.as_strategy())
        @settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.generate])
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
                                 timeout=30)
            answered[response.status_code] = answered.get(response.status_code, 0) + 1
            problem = None
            if response.status_code >= 500:
                problem = "server error"
            elif response.status_code >= 400:
                problem = _refusal_problem(response)
            if problem is not None:
                failures.append(f"{problem}: {response.status_code} {case.method} "
                                f"{case.formatted_path} query={case.query} "
                                f"body={case.body!r:.200}: {response.text[:200]}")

        fuzz()
    assert failures == [], "\n".join(failures[:20])
    assert any(400 <= code < 500 for code in answered), answered  # the refusals were checked

    status = httpx.get(f"{edge_oven.url}/status", timeout=10).json()
    assert status["healthy"], status
    assert [a["name"] for a in status["actors"] if a["restarts"]] == []
