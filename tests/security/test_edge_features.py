"""CORS (off unless configured), the per-client rate limit on job submission, and tokens that
never reach the log, through a real `oven serve`."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from oven._service import Service
from oven.config import load
from oven.config._edge import DEFAULT_LIMITED, EdgeSettings
from oven.http._edge import TokenBuckets, _limited, client_address
from tests.oven_process import OvenProcess, StartOven
from tests.pipeline.grab_client import metric

from .conftest import ADMIN_TOKEN, METRICS_TOKEN, PTY_TOKEN

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
    # Admitted: queued or attached (202), or already done on a slow machine (200, cached).
    assert all(a.status_code in (200, 202) for a in answers[:3]), [a.text for a in answers]
    limited = answers[3]
    assert limited.status_code == 429, limited.text
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 90 <= int(limited.headers["retry-after"]) <= 100  # one token per 100 s
    # Polling and the other routes are not limited.
    job_id = answers[0].json()["id"]
    assert httpx.get(f"{oven.url}/grabs/{job_id}", timeout=10).status_code == 200
    assert httpx.get(f"{oven.url}/health", timeout=10).status_code == 200
    assert metric(oven, "oven_rate_limited_total", {"rule": "POST /grab"}) == 1


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


# -- which requests the rate limit covers ------------------------------------------------------

# The requests that make oven do work, as (method, route path): every one of them, in every
# method Starlette answers for it (a GET route also answers HEAD, and runs the same handler),
# must be covered by a default rule.
SUBMISSIONS = {
    "/grabs": {"POST"},
    "/grab/{format}/{width:int}/{height:int}/{piece}": {"GET", "HEAD"},
    "/icon/{size:int}/{name}": {"GET", "HEAD"},
    "/preview/{dims}/{name}": {"GET", "HEAD"},
    "/bakes": {"POST"},
    "/app-screenshots/{preset}/{name}": {"GET", "HEAD"},
    "/app-screenshots/{name}": {"GET", "HEAD"},  # one request submits a capture per preset
    "/og/{name}": {"GET", "HEAD"},
    # the old service's routes (oven.compat)
    "/grab": {"POST"},
    "/grab/{format}/{width}/{height}/{piece}": {"GET", "HEAD"},
    "/icon/{dims}/{name}": {"GET", "HEAD"},
    "/app-screenshots/download/{piece}": {"GET", "HEAD"},
    "/bundle-html": {"GET", "HEAD"},
    "/bundle-prewarm": {"POST"},
    # need the admin token, but "POST /grab" is a prefix of theirs: limited all the same
    "/grab-cleanup": {"POST"}, "/grab-clear": {"POST"},
}
# Routes that are not limited, and why. A new route must be put in one list or the other.
NOT_LIMITED = {
    # reads: one store or actor ask each, polled at the client's pace while its jobs run
    "/grabs/{job_id}", "/grabs/{job_id}/result", "/grab-status", "/frozen", "/results/{key:path}",
    "/bakes/{bake_id}", "/health", "/ready", "/status", "/metrics", "/openapi.json",
    # need the admin token (or a job's own cancel token)
    "/frozen/{piece}", "/cache/{capture_key}", "/admin/reload", "/admin/faults/{actor}/crash",
    # need the PTY token, and pty.max_sessions bounds what they start
    "/pty/sessions", "/pty/sessions/{session_id}", "/pty/sessions/{session_id}/stream",
    "/pty/sessions/{session_id}/ws",
    # pages and static files
    "/", "/pty", "/dashboard/events", "/pieces", "/pty/static", "/dashboard/static",
    # the old service's reads and pages: a store read or a listing, no capture
    "/api/frozen", "/api/app-screenshots/{piece}", "/app-screenshots", "/bundle-status",
    "/bake-status", "/bake-complete",
    # the old service's admin and secret-holding routes
    "/api/frozen/{piece}", "/bake",
    # the old OG images: each rendered once a UTC day (single-flight), then read from disk;
    # crawlers, which come from many addresses, must never see a 429 for an og:image
    "/kidlisp-og.png", "/kidlisp-og", "/kidlisp-og/status", "/kidlisp-og/preview",
    "/kidlisp-og/images/{name}", "/notepat-og.png", "/kidlisp-backdrop.webp",
    "/kidlisp-backdrop",
}


def _app_routes() -> list[BaseRoute]:
    """The routes of the app `oven serve` runs (built, never started)."""
    app: Any = Service(load(None, env={})).asgi_app()
    while not isinstance(app, Starlette):
        app = app.app  # through the edge middleware
    return list(app.routes)


def _example_path(template: str) -> str:
    """A concrete path for a route template: each {param} becomes a plausible value."""
    examples = {"format": "png", "width:int": "64", "height:int": "64", "size:int": "64",
                "dims": "64x64", "key:path": "ab/cd.png"}
    return re.sub(r"\{([^}]+)\}", lambda m: examples.get(m.group(1), "x.png"), template)


def _rule_for(method: str, path: str, edge: EdgeSettings) -> str | None:
    return _limited({"type": "http", "method": method, "path": path}, edge)


def test_every_submission_route_is_covered_by_a_default_rule_in_every_method() -> None:
    edge = EdgeSettings()
    routes = _app_routes()
    paths = {route.path for route in routes if isinstance(route, Route | WebSocketRoute | Mount)}
    unclassified = paths - set(SUBMISSIONS) - NOT_LIMITED
    assert not unclassified, f"new routes: add each to SUBMISSIONS or NOT_LIMITED: {unclassified}"
    for route in routes:
        if not isinstance(route, Route):
            continue
        example = _example_path(route.path)
        for method in route.methods or ():
            covered = _rule_for(method, example, edge) is not None
            assert covered == (method in SUBMISSIONS.get(route.path, set())), \
                f"{method} {route.path} ({example}) is {'' if covered else 'not '}limited"
    for path, methods in SUBMISSIONS.items():
        declared = {m for r in routes if isinstance(r, Route) and r.path == path
                    for m in r.methods or ()}
        assert methods <= declared, f"{path} answers {declared}, the list says {methods}"


def test_a_rule_for_get_also_limits_head_and_no_other_method() -> None:
    edge = EdgeSettings(rate_limited_paths=["GET /thing/", "POST /other", "/any"])
    assert _rule_for("HEAD", "/thing/1", edge) == "GET /thing/"
    assert _rule_for("GET", "/thing/1", edge) == "GET /thing/"
    assert _rule_for("POST", "/thing/1", edge) is None
    assert _rule_for("HEAD", "/other", edge) is None
    assert _rule_for("DELETE", "/any/x", edge) == "/any"
    assert _rule_for("HEAD", "/any/x", edge) == "/any"


def test_the_shipped_config_file_lists_the_default_rules() -> None:
    shipped = tomllib.loads((Path(__file__).parents[2] / "config" / "oven.toml").read_text())
    assert shipped["edge"]["rate_limited_paths"] == DEFAULT_LIMITED


def _limited_oven(start_oven: StartOven) -> OvenProcess:
    """One token per client, refilled once in 100 s; each test client is its own
    X-Forwarded-For address so one route's burst does not spend another's bucket."""
    return start_oven({"edge": {"rate_limit_per_s": 0.01, "rate_limit_burst": 2,
                                "trust_forwarded": True},
                       "browser": {"pages": 1}})


def _burst(oven: OvenProcess, method: str, path: str, client: str) -> list[int]:
    # Unknown pieces: the answers that get through are quick 404s, no capture runs.
    return [httpx.request(method, f"{oven.url}{path}", timeout=30,
                          headers={"x-forwarded-for": client}).status_code for _ in range(4)]


def test_a_burst_of_heads_on_the_get_submission_routes_gets_429(start_oven: StartOven) -> None:
    oven = _limited_oven(start_oven)
    paths = ["/grab/png/32/32/no-such-piece?nowait=1", "/icon/32/no-such-piece.png",
             "/preview/32x32/no-such-piece.png", "/app-screenshots/phone-portrait/no-such.png",
             "/app-screenshots/no-such.zip", "/og/no-such-layout.png"]
    for index, path in enumerate(paths):
        answers = _burst(oven, "HEAD", path, f"198.51.100.{index + 1}")
        assert answers[:2] == [404, 404] and answers[2:] == [429, 429], (path, answers)
    assert metric(oven, "oven_rate_limited_total", {"rule": "GET /grab/"}) == 2


def test_a_burst_of_app_screenshot_requests_gets_429(start_oven: StartOven) -> None:
    oven = _limited_oven(start_oven)
    for index, path in enumerate(["/app-screenshots/no-such.zip",
                                  "/app-screenshots/phone-portrait/no-such.png"]):
        answers = _burst(oven, "GET", path, f"203.0.113.{index + 1}")
        assert answers[:2] == [404, 404] and answers[2:] == [429, 429], (path, answers)
        limited = httpx.get(f"{oven.url}{path}", timeout=30,
                            headers={"x-forwarded-for": f"203.0.113.{index + 1}"})
        assert limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) > 1
    assert metric(oven, "oven_rate_limited_total", {"rule": "GET /app-screenshots/"}) == 6
