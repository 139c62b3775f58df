"""GET /dashboard/events through a real `oven serve`: snapshot, then small deltas, 4 a second at
most; clients that never read neither grow the server nor hold up the others."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.dashboard.sse_client import Event, SseClient
from tests.oven_process import OvenProcess
from tests.pipeline.grab_client import metric, submit, wait_for_job
from tests.waiting import wait_until

ANIM = {"piece": "anim", "format": "webp", "width": 640, "height": 360, "frames": 60, "fps": 20}
STUCK_CLIENTS = 20


@pytest.fixture
def client(oven: OvenProcess) -> Iterator[SseClient]:
    reader = SseClient(oven.url).start()
    yield reader
    reader.close()


def most_in_window(events: list[Event], window_s: float) -> int:
    times = [e.at for e in events]
    return max((sum(1 for t in times[i:] if t - start < window_s)
                for i, start in enumerate(times)), default=0)


def test_the_first_event_is_a_snapshot_and_later_events_are_small_deltas_at_most_4_a_second(
        oven: OvenProcess, client: SseClient) -> None:
    wait_until("the snapshot", lambda: client.events, timeout=20)
    snapshot = client.events[0]
    assert snapshot.kind == "snapshot"
    assert {"service", "actors", "grabs", "memory", "frozen", "bakes", "pty"} <= set(
        snapshot.body)
    assert snapshot.body["actors"]["grab_queue"]["state"] == "running"
    assert snapshot.body["pty"]["enabled"] is True

    accepted = submit(oven, **ANIM)
    job_id = accepted["id"]
    stages = set()

    def final_state() -> str | None:
        job = client.job(job_id) or {}
        if job.get("stage"):
            stages.add(job["stage"])
        return str(job["state"]) if job.get("where") == "recent" else None

    assert wait_until("the job to finish in the stream", final_state, timeout=90) == \
        "complete", wait_for_job(oven, job_id)
    job = client.job(job_id)
    assert job is not None and job["result_url"] == f"/grabs/{job_id}/result"
    assert job["content_type"] == "image/webp" and job["bytes"] > 0
    assert stages & {"navigate", "ready", "capture", "encode", "upload"}, stages

    deltas = client.events[1:]
    assert deltas and all(e.kind == "delta" for e in deltas)
    assert max(e.size for e in deltas) < snapshot.size, (snapshot.size, sorted(
        e.size for e in deltas)[-3:])
    # Arrival times jitter a little: a window just under a second still holds at most 4.
    assert most_in_window(client.events, 0.9) <= 4
    versions = [e.version for e in client.events]
    assert versions == sorted(set(versions))

    # The state rebuilt from the deltas is the state a new client gets as its snapshot.
    fresh = SseClient(oven.url).start()
    try:
        wait_until("a second snapshot", lambda: fresh.events, timeout=20)
        assert fresh.events[0].kind == "snapshot"
        # The first client may still have a delta on its way that the snapshot already holds.
        wait_until("both clients to hold the same job",
                   lambda: fresh.job(job_id) == client.job(job_id), timeout=10)
    finally:
        fresh.close()
    print(f"snapshot {snapshot.size} B; {len(deltas)} deltas, median "
          f"{sorted(e.size for e in deltas)[len(deltas) // 2]} B, largest "
          f"{max(e.size for e in deltas)} B; busiest 0.9 s window "
          f"{most_in_window(client.events, 0.9)} events; stages seen {sorted(stages)}")


def seen_complete(client: SseClient, job_id: str) -> Callable[[], bool]:
    return lambda: (client.job(job_id) or {}).get("state") == "complete"


def stuck_client(oven: OvenProcess) -> socket.socket:
    """Connects, asks for the stream and never reads a byte (a tiny receive window)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", oven.port))
    sock.sendall(b"GET /dashboard/events HTTP/1.1\r\nHost: oven\r\n"
                 b"Accept: text/event-stream\r\n\r\n")
    return sock


def test_clients_that_never_read_do_not_grow_the_server_or_hold_up_a_reading_client(
        oven: OvenProcess, client: SseClient) -> None:
    assert oven.proc is not None
    server = psutil.Process(oven.proc.pid)
    wait_until("the snapshot", lambda: client.events, timeout=20)
    rss_before = server.memory_info().rss
    stuck = [stuck_client(oven) for _ in range(STUCK_CLIENTS)]
    try:
        wait_until(f"{STUCK_CLIENTS + 1} dashboard clients",
                   lambda: metric(oven, "oven_dashboard_clients") == STUCK_CLIENTS + 1,
                   timeout=20)
        # Activity that changes the state many times while the stuck clients read nothing.
        for n in range(3):
            job_id = submit(oven, **{**ANIM, "frames": 20, "fps": 20 + n})["id"]
            done = wait_for_job(oven, job_id, timeout=90)
            assert done["state"] == "complete", done
            # The reading client sees each completion promptly, stuck neighbours or not.
            wait_until("the reading client to see the job complete",
                       seen_complete(client, job_id), timeout=5)
        growth = server.memory_info().rss - rss_before
        assert growth < 25 * 2**20, f"oven serve grew {growth / 2**20:.1f} MiB"
        assert client.error is None, client.error
    finally:
        for sock in stuck:
            sock.close()
    wait_until("the stuck clients to be let go",
               lambda: metric(oven, "oven_dashboard_clients") == 1, timeout=20)
    print(f"{STUCK_CLIENTS} stuck clients: oven serve RSS {growth / 2**20:+.1f} MiB; "
          f"reading client got {len(client.events)} events")


def test_the_page_and_the_stream_are_in_the_openapi_description_and_answer_plain_clients(
        oven: OvenProcess) -> None:
    page = httpx.get(f"{oven.url}/", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "dashboard/static/dashboard.js" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    for path, kind in (("dashboard.js", "javascript"), ("dashboard.css", "text/css")):
        asset = httpx.get(f"{oven.url}/dashboard/static/{path}", timeout=10)
        assert asset.status_code == 200 and kind in asset.headers["content-type"]
    assert httpx.get(f"{oven.url}/dashboard/static/nope.js", timeout=10).status_code == 404
    paths = httpx.get(f"{oven.url}/openapi.json", timeout=10).json()["paths"]
    assert "get" in paths["/"] and "get" in paths["/dashboard/events"]
    # A client that does not ask for an event stream gets an answer, not an endless body.
    plain = httpx.get(f"{oven.url}/dashboard/events", timeout=10)
    assert plain.status_code == 406, plain.text
    assert "text/event-stream" in plain.json()["error"]["message"]


def test_oven_serve_stops_cleanly_with_a_dashboard_still_connected(tmp_path: Path) -> None:
    """uvicorn waits for open responses up to server.shutdown_grace_s; the dashboard's streams
    are told to end when SIGTERM arrives, so the stop does not wait out a long grace. The
    stream leaves quietly and nothing is left running."""
    grace_s = 60.0
    oven = OvenProcess(tmp_path, config={"server": {"shutdown_grace_s": grace_s}}).start()
    reader = SseClient(oven.url).start()
    try:
        wait_until("the snapshot", lambda: reader.events, timeout=20)
        started = time.monotonic()
        assert oven.stop() == 0  # also asserts that no process it started is left
        took = time.monotonic() - started
    finally:
        reader.close()
        if oven.proc is not None and oven.proc.poll() is None:
            oven.stop()
    assert "Traceback" not in oven.log, oven.log[-3000:]
    assert took < 20, took  # the actors' orderly stop, not the 60 s grace
    print(f"oven serve stopped in {took:.1f} s with a dashboard connected (grace {grace_s} s)")
