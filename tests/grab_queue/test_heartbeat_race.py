"""A heartbeat racing a settle does not call the settled job's lease lost."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from oven import metrics
from oven.actors.grab_queue import Cancel
from oven.actors.grab_queue._lease import LeaseKeeper
from tests.grab_queue.conftest import Scripts, StartQueue
from tests.grab_queue.stubs import Outcome, Script


def test_a_job_settled_while_its_renewal_was_on_the_way_is_not_a_lost_lease(
        start_queue: StartQueue, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    # The interleaving is forced (it happens by chance under load: a burst on a busy box logged
    # "lease lost (another instance took it over)" with one instance): the heartbeat takes its
    # list of held jobs, then the job settles, then the renewal reaches the store, which no
    # longer holds the job as running. The store and every write are real; only the order is set.
    snapshot, settled, next_round = threading.Event(), threading.Event(), threading.Event()
    renew = LeaseKeeper.renew

    async def renew_after_the_settle(self: LeaseKeeper, held: list[tuple[str, Any]]
                                     ) -> set[str]:
        if settled.is_set():
            next_round.set()  # the delayed round has judged its renewals by now
        elif held:
            snapshot.set()
            while not settled.is_set():
                await asyncio.sleep(0.01)
        return await renew(self, held)

    monkeypatch.setattr(LeaseKeeper, "renew", renew_after_the_settle)
    q = start_queue(scripts=Scripts(encoder=Script(Outcome.HANG)))
    lost = metrics.LEASES_LOST.labels(instance_id="queue-a")
    lost_before = lost._value.get()
    job_id = q.submit().job["id"]
    assert snapshot.wait(30), "no heartbeat held the running job"
    q.system.ask("grab_queue", Cancel(job_id), timeout=30)
    assert q.final(job_id)["state"] == "cancelled"
    with caplog.at_level(logging.WARNING):
        settled.set()
        assert next_round.wait(30), "the heartbeat did not come round again"
    assert not [r for r in caplog.records if "lease lost" in r.getMessage()]
    assert lost._value.get() == lost_before
