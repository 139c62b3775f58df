"""README PTY: on the SSE stream `id:` is the byte offset, so a reconnect with `Last-Event-ID`
resumes; one that has fallen off the ring gets a resync. Through a real `oven serve`: an
observer that drops mid-output and reconnects with the last id it saw gets the rest, with no
byte lost or repeated, while the child is still printing; `Last-Event-ID: 0` replays from the
start; one older than the ring gets `resync` naming the bytes lost, then the ring, exactly."""

from __future__ import annotations

import base64
import sys
from collections.abc import Generator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.oven_process import OvenProcess, running_oven

TOKEN = "pty-resume-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RING_BYTES = 64 * 1024  # the smallest ring, so the flood below falls off it

PACED_LINES = 3000  # 21 KB, 30 lines every 50 ms: still printing when the observer reconnects
FLOOD_LINES = 30000  # 240 KB at once, almost four rings
# Raw profiles: no echo and no output processing, so the tty carries exactly these bytes. The
# child then waits on its stdin, keeping the session (and its ring) open until it is deleted.
PRINTER = """
import os, sys, time
lines, width, batch = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for start in range(0, lines, batch):
    os.write(1, b"".join(b"%0*d\\n" % (width, i) for i in range(start, min(start + batch, lines))))
    if batch < lines:
        time.sleep(0.05)
os.read(0, 1)
"""


def printed(lines: int, width: int) -> bytes:
    return b"".join(b"%0*d\n" % (width, i) for i in range(lines))


PACED = printed(PACED_LINES, 6)
FLOOD = printed(FLOOD_LINES, 7)


@dataclass(frozen=True)
class Event:
    name: str
    id: int | None
    data: str


@pytest.fixture(scope="module")
def oven(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvenProcess]:
    config = {
        "pty": {"enabled": True, "token": TOKEN, "ring_bytes": RING_BYTES,
                "pause_high_bytes": 32 * 1024, "resume_low_bytes": 8 * 1024},
        "pty.profiles.paced": {"command": [sys.executable, "-c", PRINTER, str(PACED_LINES), "6",
                                           "30"], "raw": True},
        "pty.profiles.flood": {"command": [sys.executable, "-c", PRINTER, str(FLOOD_LINES), "7",
                                           str(FLOOD_LINES)], "raw": True},
    }
    with running_oven(tmp_path_factory.mktemp("pty-resume") / "oven", config) as process:
        yield process


@pytest.fixture
def session(oven: OvenProcess, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """A session of the profile named by the test's parametrization; deleted afterwards."""
    created = httpx.post(f"{oven.url}/pty/sessions", headers=AUTH, timeout=20,
                         json={"profile": request.param, "cols": 80, "rows": 24})
    assert created.status_code == 201, created.text
    body: dict[str, str] = created.json()
    yield body
    assert httpx.delete(f"{oven.url}/pty/sessions/{body['id']}", headers=AUTH,
                        timeout=20).status_code in (200, 204)


Events = Generator[Event, None, None]


def events(oven: OvenProcess, session: dict[str, str], last_event_id: str | None) -> Events:
    """The session's SSE events, parsed; closing the generator closes the connection."""
    headers = {**AUTH, **({"Last-Event-ID": last_event_id} if last_event_id is not None else {})}
    with httpx.stream("GET", f"{oven.url}{session['stream_url']}", headers=headers,
                      timeout=httpx.Timeout(30, read=30)) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        idle = 0
        for line in response.iter_lines():
            if line.startswith(":"):  # a keep-alive: one a second while there is nothing to send
                idle += 1
                assert idle < 20, "no event for 20 keep-alives"
                continue
            idle = 0
            if line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
                continue
            if fields:
                yield Event(fields.get("event", "message"),
                            int(fields["id"]) if "id" in fields else None, fields.get("data", ""))
                fields = {}


def read_output(stream: Iterator[Event], start: int, *, until: int) -> tuple[bytes, int]:
    """Output events from offset `start` until at least `until` bytes are read; each event's
    id must be the offset after its bytes. Returns the bytes and the last id."""
    got, offset = b"", start
    for event in stream:
        assert event.name == "output", event
        data = base64.b64decode(event.data)
        offset += len(data)
        assert event.id == offset, (event.id, offset)
        got += data
        if len(got) >= until:
            return got, offset
    raise AssertionError(f"the stream ended after {len(got)} bytes")


@pytest.mark.parametrize("session", ["paced"], indirect=True)
def test_an_observer_reconnecting_with_last_event_id_resumes_with_no_byte_lost_or_repeated(
        oven: OvenProcess, session: dict[str, str]) -> None:
    first = events(oven, session, "0")
    before, last_id = read_output(first, 0, until=4096)
    first.close()
    # Dropped while the child is still printing: what it prints meanwhile must not be lost.
    assert last_id < len(PACED), "the child finished before the observer dropped"

    resumed = events(oven, session, str(last_id))
    after, end = read_output(resumed, last_id, until=len(PACED) - last_id)
    resumed.close()
    assert end == len(PACED)
    assert before + after == PACED


@pytest.mark.parametrize("session", ["paced"], indirect=True)
def test_last_event_id_zero_replays_from_the_start_and_the_live_end_repeats_nothing(
        oven: OvenProcess, session: dict[str, str]) -> None:
    whole = events(oven, session, "0")
    replayed, end = read_output(whole, 0, until=len(PACED))
    whole.close()
    assert (replayed, end) == (PACED, len(PACED))
    # Everything printed: from the last id there is nothing to send, so a reconnect at the end
    # gets keep-alive comments (one a second) and not one byte again.
    keep_alives = 0
    with httpx.stream("GET", f"{oven.url}{session['stream_url']}", timeout=30,
                      headers={**AUTH, "Last-Event-ID": str(end)}) as response:
        for line in response.iter_lines():
            assert not line.startswith(("data:", "event:")), line
            keep_alives += line == ": keep-alive"
            if keep_alives == 3:
                break


@pytest.mark.parametrize("session", ["flood"], indirect=True)
def test_a_last_event_id_older_than_the_ring_gets_a_resync_then_the_ring_exactly(
        oven: OvenProcess, session: dict[str, str]) -> None:
    # Wait until the child has printed it all: an observer follows it to the end (an id past
    # what is printed would start at the live end, wherever the child is then).
    offset = 0
    for event in (follower := events(oven, session, "0")):
        assert event.id is not None, event
        offset = event.id if event.name == "resync" else offset + len(base64.b64decode(event.data))
        assert event.id == offset, (event, offset)
        if offset == len(FLOOD):
            break
    follower.close()

    for asked in (0, 1000, len(FLOOD) - RING_BYTES - 1):
        stream = events(oven, session, str(asked))
        resync = next(stream)
        assert resync.name == "resync", resync
        ring_start = len(FLOOD) - RING_BYTES
        assert resync.id is not None and ring_start - 4096 <= resync.id <= ring_start, resync
        assert int(resync.data) == resync.id - asked, resync
        rest, end = read_output(stream, resync.id, until=len(FLOOD) - resync.id)
        stream.close()
        assert end == len(FLOOD)
        assert rest == FLOOD[resync.id:]
