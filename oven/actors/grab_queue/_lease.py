"""The shared job queue as one instance sees it: its name, claims, heartbeats, expired leases,
and waiting for jobs that finish elsewhere.

Every oven process on one store (a SQLite file, or one MongoDB for several hosts) takes its work
from the store's `grabs` table: it claims the oldest queued job of a lane atomically
(Store.claim_next: state queued → running with `owner` and `lease_expires_at`), renews the lease
of each job it runs every `cluster.heartbeat_s`, and requeues running jobs whose lease ran out,
because their instance died. A single instance does exactly the same.

Waiters on a job that runs in another instance are answered by polling the store every
`cluster.poll_s`: MongoDB change streams need a replica set (nx-27017 and many small deployments
have none) and SQLite has no notifications, while a poll reads only the few watched ids by
primary key. Jobs that finish in this instance wake their waiters at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import time
import uuid
from dataclasses import dataclass, field

from oven import metrics
from oven.actors.store import StoreClient
from oven.config import Settings
from oven.jobs import JobState
from oven.lanes import Lane
from oven.store import JobRecord, StaleState

log = logging.getLogger(__name__)


def resolve_instance_id(settings: Settings) -> str:
    """`cluster.instance_id`, else hostname:port — stable across restarts, so a restarted
    instance requeues its own running jobs at once instead of waiting for their leases."""
    if settings.cluster.instance_id:
        return settings.cluster.instance_id
    return _generated_id(settings.server.port)


@functools.cache
def _generated_id(port: int) -> str:
    host = socket.gethostname() or "oven"
    # Port 0 picks a new port each start: nothing stable to name, so a random suffix.
    return f"{host}:{port}" if port else f"{host}-{uuid.uuid4().hex[:8]}"


@dataclass
class _Watch:
    event: asyncio.Event = field(default_factory=asyncio.Event)
    waiters: int = 0


class Watchers:
    """Waiters per job id; woken by `notify` (job final here) or by the store poll."""

    def __init__(self) -> None:
        self._watches: dict[str, _Watch] = {}

    async def wait(self, job_id: str, timeout_s: float) -> None:
        watch = self._watches.setdefault(job_id, _Watch())
        watch.waiters += 1
        try:
            # Bounded: the caller answers with the job's current state when this runs out.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await watch.event.wait()
        finally:
            watch.waiters -= 1
            if watch.waiters == 0 and self._watches.get(job_id) is watch:
                del self._watches[job_id]

    def notify(self, job_id: str) -> None:
        watch = self._watches.get(job_id)
        if watch is not None:
            watch.event.set()

    def watched(self) -> list[str]:
        return [job_id for job_id, w in self._watches.items() if not w.event.is_set()]


class LeaseKeeper:
    """Claims, heartbeats and takeovers for one instance, through the Store actor."""

    def __init__(self, store: StoreClient, owner: str, settings: Settings) -> None:
        self.store = store
        self.owner = owner
        self.settings = settings
        self.last_claim_at: float | None = None  # in this instance's heartbeat record

    @property
    def lease_s(self) -> float:
        return self.settings.cluster.lease_s

    async def claim(self, lanes: list[Lane]) -> JobRecord | None:
        t0 = time.monotonic()
        record = await self.store.claim_next(self.owner, [lane.value for lane in lanes],
                                             lease_s=self.lease_s)
        metrics.LEASE_OP_SECONDS.labels(op="claim").observe(time.monotonic() - t0)
        if record is not None:
            self.last_claim_at = time.time()
            metrics.LEASE_CLAIMS.labels(instance_id=self.owner).inc()
        return record

    async def renew(self, held: list[tuple[str, str | None]]) -> set[str]:
        """Renew the lease of each (job id, claim token); returns the ids no longer ours."""
        lost = set()
        for job_id, claim in held:
            t0 = time.monotonic()
            if not await self.store.renew_lease(job_id, self.owner, lease_s=self.lease_s,
                                                claim=claim):
                lost.add(job_id)
            metrics.LEASE_OP_SECONDS.labels(op="renew").observe(time.monotonic() - t0)
        return lost

    async def requeue_expired(self, held_here: set[str]) -> int:
        """Requeue (or fail, when out of attempts or time) jobs whose owner stopped renewing.

        A job parked in upload_pending is taken over only once its lease has been silent for
        `cluster.parked_takeover_s` more: its encoded file is on its owner's disk, so a takeover
        captures it again, and an owner that restarts soon finishes it cheaper.
        """
        now = time.time()
        taken = 0
        for record in await self.store.expired_leases(now=now):
            if record.id in held_here:
                continue  # ours: the heartbeat renews it (a late one still finds it running)
            owner = record.owner or "an unknown instance"
            if record.state is JobState.UPLOAD_PENDING:
                silent = now - (record.lease_expires_at or now)
                if silent >= self.settings.cluster.parked_takeover_s:
                    taken += await self._take_over_parked(record, owner, now)
                continue
            out_of_tries = record.attempts >= self.settings.queue.max_attempts
            try:
                if out_of_tries or now >= record.deadline_at:
                    reason = (f"the lease of {owner} expired (instance gone?) after "
                              f"{record.attempts} attempts")
                    await self.store.transition(
                        record.id, JobState.FAILED, expect=JobState.RUNNING,
                        expect_lease_before=now, note=reason, error=reason, stage=None)
                else:
                    await self.store.transition(
                        record.id, JobState.QUEUED, expect=JobState.RUNNING,
                        expect_lease_before=now, note=f"lease of {owner} expired; requeued",
                        stage="queued")
            except StaleState:
                continue  # another instance took it over first, or the owner woke up
            taken += 1
            metrics.LEASES_EXPIRED.labels(instance_id=self.owner).inc()
            log.warning("job=%s: lease of %s expired; %s", record.id, owner,
                        "failed (no attempts left)" if out_of_tries else "requeued")
        return taken

    async def _take_over_parked(self, record: JobRecord, owner: str, now: float) -> int:
        note = (f"{owner} parked it for upload and has been gone for "
                f"{self.settings.cluster.parked_takeover_s:g} s; captured again")
        try:
            await self.store.transition(
                record.id, JobState.QUEUED, expect=JobState.UPLOAD_PENDING,
                expect_lease_before=now - self.settings.cluster.parked_takeover_s, note=note,
                stage="queued", attempts=0, error=None,
                deadline_at=now + self.settings.queue.deadline_s)
        except StaleState:
            return 0  # its owner came back, or another instance was first
        metrics.LEASES_EXPIRED.labels(instance_id=self.owner).inc()
        log.warning("job=%s: %s", record.id, note)
        return 1
