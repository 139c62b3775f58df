"""A dashboard SSE reader on its own thread: records each event with its arrival time."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from oven.http._dashboard_hub import merge_patch


@dataclass
class Event:
    at: float
    kind: str
    version: int
    size: int
    body: dict[str, Any]


@dataclass
class SseClient:
    url: str
    events: list[Event] = field(default_factory=list)
    state: dict[str, Any] | None = None
    error: BaseException | None = None
    connected: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _response: httpx.Response | None = None

    def start(self) -> SseClient:
        self._thread = threading.Thread(target=self._run, name="sse-client", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            with httpx.stream("GET", f"{self.url}/dashboard/events",
                              headers={"Accept": "text/event-stream"},
                              timeout=httpx.Timeout(30, read=30)) as response:
                self._response = response
                assert response.status_code == 200, response.status_code
                assert response.headers["content-type"].startswith("text/event-stream")
                self.connected.set()
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line:
                        name, _, value = line.partition(": ")
                        fields[name] = value
                        continue
                    if "data" in fields:
                        self._accept(fields)
                    fields = {}
        except BaseException as exc:  # reported to the test through .error
            if not self._stop.is_set():
                self.error = exc

    def _accept(self, fields: dict[str, str]) -> None:
        body = json.loads(fields["data"])
        event = Event(time.monotonic(), fields["event"], int(fields["id"]),
                      len(fields["data"]), body)
        self.state = body if event.kind == "snapshot" else merge_patch(self.state, body)
        self.events.append(event)

    def job(self, job_id: str) -> dict[str, Any] | None:
        jobs: dict[str, Any] = ((self.state or {}).get("grabs") or {}).get("jobs") or {}
        return jobs.get(job_id)

    def close(self) -> None:
        """Hang up, and end the reading thread's read under way.

        Closing the response from another thread does not wake a read blocked on its socket:
        the read then waits for the next event, and a quiet dashboard sends only a keepalive
        every 15 s. Shutting the socket down ends the read at once."""
        self._stop.set()
        response = self._response
        if response is not None:
            stream = response.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):  # the server may have hung up already
                    sock.shutdown(socket.SHUT_RDWR)
            response.close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            assert not self._thread.is_alive(), "the SSE reader did not stop"
