"""CORS (off unless configured), the per-client rate limit on job submission, and tokens that
never reach the log, through a real `oven serve`."""

from __future__ import annotations

import httpx
from oven_process import OvenProcess
from pipeline.grab_client import metric

from oven.http._edge import TokenBuckets, client_address

from .conftest import ADMIN_TOKEN, METRICS_TOKEN, PTY_TOKEN, StartOven

APP = "https://app.example"
GRAB = {"piece": "still", "format": "png", "width": 32, "height": 32}


def _preflight(oven: OvenProcess, origin: str) -> httpx.Response:
    return httpx.options(f"{oven.url}/grabs", timeout=10, headers={
        "origin": origin, "access-control-request-method": "POST",
        "access-control-request-headers": "content-type"})


def test_cors_is_off_by_default(edge_oven: OvenProcess) -> None:
    simple = httpx.get(f"{edge_oven.url}/health", headers={"origin": APP}, timeout=10)
    assert "access-control-allow-origin" not in simple.headers
    assert "access-control-allow-origin" not in _preflight(edge_oven, APP).headers


def test_tokens_presented_right_or_wrong_never_reach_the_log(edge_oven: OvenProcess) -> None:
    url = edge_oven.url
    bearer = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    assert httpx.post(f"{url}/admin/reload", headers=bearer, timeout=30).status_code == 200
    assert httpx.get(f"{url}/metrics", timeout=10,
                     headers={"authorization": f"Bearer {METRICS_TOKEN}"}).status_code == 200
    assert httpx.get(f"{url}/pty/sessions", timeout=10,
                     headers={"authorization": f"Bearer {PTY_TOKEN}"}).status_code == 200
    httpx.get(f"{url}/pty", params={"token": PTY_TOKEN, "profile": "nope"}, timeout=10)
    wrong = httpx.post(f"{url}/admin/reload", timeout=10,
                       headers={"authorization": f"Bearer {ADMIN_TOKEN}x"})
    assert wrong.status_code == 403
    assert ADMIN_TOKEN not in wrong.text
    assert httpx.delete(f"{url}/frozen/still", headers=bearer, timeout=10).status_code == 404
    log = edge_oven.log  # the service logs at DEBUG here, its most talkative level
    assert "config reloaded" in log
    for token in (ADMIN_TOKEN, METRICS_TOKEN, PTY_TOKEN):
        assert token not in log


def test_cors_answers_configured_origins_and_refuses_others_with_json(
        start_oven: StartOven) -> None:
    oven = start_oven({"edge": {"cors_origins": [APP]}, "browser": {"pages": 1}})
    allowed = _preflight(oven, APP)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == APP
    refused = _preflight(oven, "https://evil.example")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "cors_refused"
    simple = httpx.get(f"{oven.url}/grab-status", headers={"origin": APP}, timeout=10)
    assert simple.headers["access-control-allow-origin"] == APP
    assert "retry-after" in simple.headers["access-control-expose-headers"].lower()


def test_a_client_over_its_submission_rate_gets_429_with_retry_after(
        start_oven: StartOven) -> None:
    oven = start_oven({"edge": {"rate_limit_per_s": 0.01, "rate_limit_burst": 3},
                       "browser": {"pages": 1}})
    answers = [httpx.post(f"{oven.url}/grabs", json=GRAB, timeout=30) for _ in range(4)]
    assert [a.status_code for a in answers[:3]] != [429] * 3
    limited = answers[3]
    assert limited.status_code == 429, limited.text
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 90 <= int(limited.headers["retry-after"]) <= 100  # one token per 100 s
    # Polling and the other routes are not limited.
    job_id = answers[0].json()["id"]
    assert httpx.get(f"{oven.url}/grabs/{job_id}", timeout=10).status_code == 200
    assert httpx.get(f"{oven.url}/health", timeout=10).status_code == 200
    assert metric(oven, "oven_rate_limited_total", {"rule": "POST /grabs"}) == 1


def test_a_forged_x_forwarded_for_does_not_make_a_new_client(start_oven: StartOven) -> None:
    oven = start_oven({"edge": {"rate_limit_per_s": 0.01, "rate_limit_burst": 1},
                       "browser": {"pages": 1}})
    assert httpx.post(f"{oven.url}/grabs", json=GRAB, timeout=30).status_code in (200, 202)
    forged = httpx.post(f"{oven.url}/grabs", json=GRAB, timeout=30,
                        headers={"x-forwarded-for": "203.0.113.9"})
    assert forged.status_code == 429


def test_the_client_table_forgets_the_least_recently_seen_beyond_its_bound() -> None:
    now = [0.0]
    buckets = TokenBuckets(capacity=2, clock=lambda: now[0])
    assert buckets.take("a", rate=1, burst=1) == 0
    assert buckets.take("a", rate=1, burst=1) == 1.0  # empty: one token per second
    buckets.take("b", rate=1, burst=1)
    buckets.take("c", rate=1, burst=1)  # "a" is the least recently seen: forgotten
    assert len(buckets) == 2
    assert buckets.take("a", rate=1, burst=1) == 0
    now[0] = 0.5
    assert buckets.take("c", rate=1, burst=1) == 0.5


def test_the_forwarded_address_is_the_last_entry_and_only_when_trusted() -> None:
    scope = {"client": ("10.0.0.2", 5555),
             "headers": [(b"x-forwarded-for", b"1.2.3.4, 198.51.100.7")]}
    assert client_address(scope, trust_forwarded=False) == "10.0.0.2"
    assert client_address(scope, trust_forwarded=True) == "198.51.100.7"
