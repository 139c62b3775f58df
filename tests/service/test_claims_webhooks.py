"""README Webhooks, through a real `oven serve` and a real HTTP receiver: a receiver that answers
503 or 429 with `Retry-After` is retried no sooner than it asked (seconds or an HTTP date), a
Retry-After past `max_backoff_s` waits the cap instead, and every attempt of a delivery carries
the same `X-Oven-Delivery` and an `X-Oven-Attempt` counting up from 1.

tests/webhooks/test_delivery.py drives the Webhooks actor in-process and its receiver scripts
statuses only; the receiver here also sends Retry-After, computed when it answers (a date must
be in the future when it is sent)."""

from __future__ import annotations

import email.utils
import itertools
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from oven.webhooks import verify
from tests.oven_process import OvenProcess, running_oven
from tests.waiting import wait_until

SECRET = "claims-webhook-secret-0123"
MAX_BACKOFF_S = 3.0
# Our own backoff (0.1 s doubling) is far below every Retry-After asked for below, so an
# attempt that ignored the header would come visibly too soon.
INITIAL_BACKOFF_S = 0.1

Answer = Callable[[], tuple[int, dict[str, str]]]


@dataclass(frozen=True)
class Arrival:
    headers: dict[str, str]
    body: bytes
    wall: float  # time.time(): compared with the HTTP dates the receiver sent


class ScriptedReceiver:
    """Records each POST per path and answers from that path's script (the last answer
    repeats); an answer is a function, so a Retry-After date is made when it is sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._arrivals: dict[str, list[Arrival]] = {}
        self._scripts: dict[str, list[Answer]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                arrival = Arrival(dict(self.headers.items()), body, time.time())
                with receiver._lock:
                    receiver._arrivals.setdefault(self.path, []).append(arrival)
                    script = receiver._scripts.get(self.path, [ok])
                    answer = script.pop(0) if len(script) > 1 else script[0]
                status, headers = answer()
                self.send_response(status)
                for name, value in {**headers, "Content-Length": "2"}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def script(self, path: str, answers: list[Answer]) -> str:
        with self._lock:
            self._scripts[path] = list(answers)
        return self.origin + path

    def arrivals(self, path: str) -> list[Arrival]:
        with self._lock:
            return list(self._arrivals.get(path, []))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def ok() -> tuple[int, dict[str, str]]:
    return 200, {}


def busy(status: int, retry_after: str) -> Answer:
    return lambda: (status, {"Retry-After": retry_after})


def busy_until(status: int, seconds: int) -> Answer:
    """Retry-After as an HTTP date `seconds` from when the answer is sent."""
    return lambda: (status, {"Retry-After": email.utils.formatdate(
        time.time() + seconds, usegmt=True)})


@pytest.fixture(scope="module")
def receiver() -> Iterator[ScriptedReceiver]:
    r = ScriptedReceiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def oven(tmp_path_factory: pytest.TempPathFactory,
         receiver: ScriptedReceiver) -> Iterator[OvenProcess]:
    config = {"webhooks": {"secret": SECRET, "allowed_origins": [receiver.origin],
                           "allow_private": True, "initial_backoff_s": INITIAL_BACKOFF_S,
                           "max_backoff_s": MAX_BACKOFF_S, "max_attempts": 5}}
    with running_oven(tmp_path_factory.mktemp("webhooks") / "oven", config) as process:
        yield process


def grab_calling_back(oven: OvenProcess, url: str, width: int) -> str:
    """A grab of its own capture key (the width), so it runs and is not a cache hit."""
    accepted = httpx.post(f"{oven.url}/grabs", timeout=30, json={
        "piece": "still", "format": "png", "width": width, "height": 90, "callback_url": url})
    assert accepted.status_code == 202, accepted.text
    job_id: str = accepted.json()["id"]
    return job_id


def delivered(receiver: ScriptedReceiver, path: str, attempts: int) -> list[Arrival]:
    arrivals: list[Arrival] = wait_until(
        f"{attempts} attempts at {path}", lambda: receiver.arrivals(path)[attempts - 1:] and
        receiver.arrivals(path), timeout=90)
    return arrivals


def assert_one_delivery_counting_attempts(arrivals: list[Arrival], job_id: str) -> None:
    assert [a.headers["X-Oven-Attempt"] for a in arrivals] == [
        str(n) for n in range(1, len(arrivals) + 1)]
    assert len({a.headers["X-Oven-Delivery"] for a in arrivals}) == 1
    for arrival in arrivals:
        assert verify(SECRET, arrival.body, arrival.headers["X-Oven-Signature"])
        payload = json.loads(arrival.body)
        assert (payload["id"], payload["state"]) == (job_id, "complete")


def test_a_503_with_retry_after_in_seconds_is_retried_no_sooner_than_asked_with_attempts_counted(
        oven: OvenProcess, receiver: ScriptedReceiver) -> None:
    url = receiver.script("/seconds", [busy(503, "2"), busy(503, "2"), ok])
    job_id = grab_calling_back(oven, url, width=201)
    arrivals = delivered(receiver, "/seconds", 3)
    gaps = [later.wall - earlier.wall for earlier, later in itertools.pairwise(arrivals)]
    assert all(gap >= 2.0 for gap in gaps), gaps
    assert_one_delivery_counting_attempts(arrivals, job_id)


def test_a_retry_after_http_date_is_honoured_no_sooner_than_that_date(
        oven: OvenProcess, receiver: ScriptedReceiver) -> None:
    url = receiver.script("/date", [busy_until(503, 3), busy_until(429, 3), ok])
    job_id = grab_calling_back(oven, url, width=202)
    arrivals = delivered(receiver, "/date", 3)
    for earlier, later in itertools.pairwise(arrivals):
        # The date has whole seconds: what was asked is the second it names, at the earliest.
        asked = math.floor(earlier.wall + 3)
        assert later.wall >= asked, f"retried {asked - later.wall:.2f} s before the date"
    assert_one_delivery_counting_attempts(arrivals, job_id)


def test_a_retry_after_past_max_backoff_waits_the_cap_instead(
        oven: OvenProcess, receiver: ScriptedReceiver) -> None:
    url = receiver.script("/capped", [busy(503, "3600"), ok])
    job_id = grab_calling_back(oven, url, width=203)
    # An hour is what was asked; delivered() waits 90 s, so only the cap lets this pass.
    first, second = delivered(receiver, "/capped", 2)
    assert second.wall - first.wall >= MAX_BACKOFF_S
    assert_one_delivery_counting_attempts([first, second], job_id)
