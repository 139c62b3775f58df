"""How an API instance judges its workers from their heartbeat records: alive while the last
heartbeat or the last claim is at most three heartbeats old; only instances that claim work
(worker or all, with page slots) count. The beacon's judgement on real records, no store."""

from __future__ import annotations

import time

import pytest

from oven.actors.grab_queue._book import Book
from oven.actors.grab_queue._instances import InstanceBeacon
from oven.actors.grab_queue._lease import LeaseKeeper
from oven.actors.store import StoreClient
from oven.config import Settings
from oven.readiness import ReadinessBoard
from oven.store import InstanceRecord

HEARTBEAT_S = 1.0


def beacon_for(role: str) -> tuple[InstanceBeacon, ReadinessBoard]:
    settings = Settings.model_validate(
        {"cluster": {"role": role, "heartbeat_s": HEARTBEAT_S, "lease_s": 3.0}})
    board = ReadinessBoard()
    book = Book(settings, board, "api-1")
    store = StoreClient(None, timeout_s=1)  # judging reads no store
    return InstanceBeacon(store, book, LeaseKeeper(store, "api-1", settings), board,
                          settings), board


def seen(instance_id: str, role: str, *, beat_age: float, claim_age: float | None = None,
         pages: int = 2) -> InstanceRecord:
    now = time.time()
    return InstanceRecord(id=instance_id, role=role, pages=pages, running=0,
                          heartbeat_at=now - beat_age,
                          last_claim_at=None if claim_age is None else now - claim_age)


def test_an_api_that_has_seen_no_worker_is_not_ready_and_makes_no_estimate() -> None:
    beacon, board = beacon_for("api")
    beacon.seen = [seen("api-1", "api", beat_age=0, pages=0)]
    beacon.judge(time.time())
    assert "no_workers" in board.reasons()
    assert beacon.book.pages == 0 and beacon.book.wait_over_deadline() is None


def test_workers_count_while_their_heartbeat_is_within_three_heartbeats() -> None:
    beacon, board = beacon_for("api")
    beacon.seen = [seen("w1", "worker", beat_age=2.5, pages=2),
                   seen("w2", "all", beat_age=0.2, pages=3),
                   seen("w3", "worker", beat_age=3.5 * HEARTBEAT_S, pages=4)]
    beacon.judge(time.time())
    assert "no_workers" not in board.reasons()
    assert beacon.book.pages == 5  # w1 and w2; w3 is silent


@pytest.mark.parametrize("record", [
    seen("w1", "worker", beat_age=4.0),
    seen("api-2", "api", beat_age=0.1, pages=0),
    seen("w2", "worker", beat_age=0.1, pages=0),
    seen("w3", "worker", beat_age=10.0, claim_age=5.0),
], ids=["silent-worker", "another-api", "worker-without-pages", "claim-too-old"])
def test_what_does_not_count_as_a_live_worker(record: InstanceRecord) -> None:
    beacon, board = beacon_for("api")
    beacon.seen = [record]
    beacon.judge(time.time())
    assert "no_workers" in board.reasons()


def test_a_recent_claim_keeps_a_worker_alive_whose_heartbeats_are_late() -> None:
    beacon, board = beacon_for("api")
    beacon.seen = [seen("w1", "worker", beat_age=10.0, claim_age=1.0)]
    beacon.judge(time.time())
    assert "no_workers" not in board.reasons()


def test_a_worker_that_stops_beating_turns_the_api_not_ready_as_time_passes() -> None:
    beacon, board = beacon_for("api")
    beacon.seen = [seen("w1", "worker", beat_age=0.0)]
    now = time.time()
    beacon.judge(now)
    assert "no_workers" not in board.reasons()
    beacon.judge(now + 3 * HEARTBEAT_S + 0.5)  # the store unreachable: the same records age
    assert "no_workers" in board.reasons()


@pytest.mark.parametrize("role", ["all", "worker"])
def test_an_instance_that_runs_jobs_itself_never_says_no_workers(role: str) -> None:
    beacon, board = beacon_for(role)
    beacon.judge(time.time())
    assert board.reasons() == {} and beacon.book.cluster_pages is None
