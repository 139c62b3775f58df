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
from oven_process import OvenProcess

from .conftest import ADMIN_TOKEN

FUZZ_EXAMPLES = int(os.environ.get("OVEN_FUZZ_EXAMPLES", "40"))


def _operations(oven: OvenProcess) -> list[Any]:
    document = httpx.get(f"{oven.url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.base_url = oven.url
    return [result.ok() for result in schema.get_all_operations()]


def test_no_generated_request_gets_a_server_error(edge_oven: OvenProcess) -> None:
    # One test looping over the operations: the schema exists only once the service runs.
    failures: list[str] = []
    operations = _operations(edge_oven)
    assert len(operations) >= 15, [op.label for op in operations]
    for operation in operations:
        if operation.path.startswith("/admin/faults"):
            continue  # crashing actors on request is its purpose (and it is off here)

        @given(case=operation.as_strategy())
        @settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.generate])
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
                                 timeout=30)
            if response.status_code >= 500:
                failures.append(f"{response.status_code} {case.method} {case.formatted_path} "
                                f"query={case.query} body={case.body!r:.200}: "
                                f"{response.text[:200]}")

        fuzz()
    assert failures == [], "\n".join(failures[:20])


def test_after_fuzzing_no_actor_restarted_and_the_service_is_healthy(
        edge_oven: OvenProcess) -> None:
    status = httpx.get(f"{edge_oven.url}/status", timeout=10).json()
    assert status["healthy"], status
    assert [a["name"] for a in status["actors"] if a["restarts"]] == []
