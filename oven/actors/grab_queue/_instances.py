"""Who works the shared queue: this instance's heartbeat record in the store, and the others'.

Every instance writes its record (role, page slots, jobs held, last claim) every
`cluster.heartbeat_s` and reads everyone's back. An `api` instance claims nothing, so it is only
as useful as the workers behind it: with no worker alive it says `no_workers` on /ready (a load
balancer then prefers another API instance) but keeps admitting, bounded by queue.max_queued,
and its queue estimates count the live workers' page slots instead of its own.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from oven.actors.grab_queue._book import Book
from oven.actors.grab_queue._lease import LeaseKeeper
from oven.actors.store import StoreClient
from oven.config import Settings
from oven.readiness import ReadinessBoard
from oven.store import InstanceRecord

log = logging.getLogger(__name__)

# A worker counts as alive while its last heartbeat (or claim) is this many heartbeats old at
# most: one late write, a slow store or a GC pause must not flip an API instance's readiness.
LIVE_BEATS = 3
# Records silent this long are dropped from the store: an instance that was stopped for good
# (or a test's port-0 instance, named afresh at each start) must not be listed forever.
FORGET_AFTER_S = 3600.0


class InstanceBeacon:
    def __init__(self, store: StoreClient, book: Book, leases: LeaseKeeper,
                 board: ReadinessBoard, settings: Settings) -> None:
        self.store = store
        self.book = book
        self.leases = leases
        self.board = board
        self.settings = settings
        self.role = settings.cluster.role  # fixed at start, like the tree (reload: restart)
        self.started_at = time.time()
        self.seen: list[InstanceRecord] = []
        self._failing = False

    @property
    def pages(self) -> int:
        return 0 if self.role == "api" else self.settings.browser.pages

    def record(self, now: float) -> InstanceRecord:
        return InstanceRecord(id=self.book.instance, role=self.role, pages=self.pages,
                              running=len(self.book.runs), heartbeat_at=now,
                              last_claim_at=self.leases.last_claim_at, started_at=self.started_at)

    async def beat(self) -> None:
        """Write this instance's record, read everyone's, and judge readiness from them. A
        store that does not answer is logged once per outage; the judgement then ages the
        records last read, so workers that stay unseen turn into `no_workers`."""
        now = time.time()
        try:
            await self.store.beat_instance(self.record(now))
            await self.store.forget_instances(silent_before=now - FORGET_AFTER_S)
            self.seen = await self.store.list_instances(seen_since=now - FORGET_AFTER_S)
        except Exception as exc:
            if not self._failing:
                log.warning("instance heartbeat failed: %s", exc)
            self._failing = True
        else:
            if self._failing:
                log.info("instance heartbeat works again")
            self._failing = False
        self.judge(time.time())

    def live_workers(self, now: float) -> list[InstanceRecord]:
        window = LIVE_BEATS * self.settings.cluster.heartbeat_s
        return [r for r in self.seen
                if r.role != "api" and r.pages > 0
                and (now - r.heartbeat_at <= window
                     or (r.last_claim_at is not None and now - r.last_claim_at <= window))]

    def judge(self, now: float) -> None:
        if self.role != "api":
            return  # it runs jobs itself
        live = self.live_workers(now)
        # Estimates (positions, ETAs, the over-the-deadline refusal) from the workers' slots.
        self.book.cluster_pages = sum(r.pages for r in live)
        if live:
            self.board.clear("no_workers")
        else:
            self.board.set("no_workers", "no worker instance has sent a heartbeat or claimed "
                                         f"a job in the last {LIVE_BEATS} heartbeats")

    def status(self) -> list[dict[str, Any]]:
        now = time.time()
        return [{"id": r.id, "role": r.role, "pages": r.pages, "running": r.running,
                 "heartbeat_at": r.heartbeat_at,
                 "last_heartbeat_age_s": round(max(0.0, now - r.heartbeat_at), 1),
                 "last_claim_age_s": (None if r.last_claim_at is None
                                      else round(max(0.0, now - r.last_claim_at), 1)),
                 "this": r.id == self.book.instance}
                for r in self.seen]
