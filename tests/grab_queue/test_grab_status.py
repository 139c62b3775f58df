"""/grab-status answers a typed GrabStatus, the model /openapi.json documents, JSON unchanged."""

from __future__ import annotations

from typing import Any

from oven.actors.grab_queue import Cancel, GrabStatus, QueueStatus
from oven.http import grab_routes
from oven.http._openapi import build_openapi
from oven.lanes import Lane
from tests.grab_queue.conftest import Scripts, StartQueue
from tests.grab_queue.stubs import Outcome, Script


def test_the_grab_status_answer_is_exactly_a_grab_status_with_every_kind_of_job(
        start_queue: StartQueue) -> None:
    q = start_queue(scripts=Scripts(browser=Script().then(Outcome.OK, Outcome.HANG)))
    done = q.submit(width=100).job["id"]
    q.final(done)
    running = q.submit(width=101).job["id"]
    q.browser.wait_calls(2)
    queued = q.submit(width=102, lane="background").job["id"]

    answer: dict[str, Any] = q.system.ask("grab_queue", QueueStatus(), timeout=10)
    status = GrabStatus.model_validate(answer)  # every key known: extra keys are refused
    assert status.as_json() == answer
    assert [v.id for v in status.running] == [running]
    assert [v.id for v in status.queued[Lane.BACKGROUND]] == [queued]
    assert status.queued[Lane.INTERACTIVE] == []
    assert done in [v.id for v in status.recent]
    for job_id in (running, queued):
        q.system.ask("grab_queue", Cancel(job_id), timeout=30)


def test_openapi_documents_the_grab_status_answer() -> None:
    document = build_openapi(grab_routes(), title="oven", version="test")
    answer = document["paths"]["/grab-status"]["get"]["responses"]["200"]
    schema = answer["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/GrabStatus"}
    fields = document["components"]["schemas"]["GrabStatus"]["properties"]
    assert set(fields) == {"instance_id", "capturing", "running", "queued", "upload_pending",
                           "recent"}
