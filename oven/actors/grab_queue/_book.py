"""The GrabQueue's book: what this instance knows of the queue, and the views it answers with.

Plain state on the actor's loop, no I/O: the jobs this instance holds (`runs` capturing or
encoding, `pending_uploads` parked until storage is back), the shared queue as last read from
the store, the page slots taken, the jobs recently finished here and their service times. A
job's view (state, stage, position, ETA) is read from here; the parts that change a job
(admission, the runner, the settler) write here.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from typing import Any

from oven import metrics
from oven.actors.grab_queue._messages import CANCEL_DIGEST, record_view
from oven.actors.grab_queue._pipeline import Outcome
from oven.config import Settings
from oven.grabs import GrabRequest
from oven.jobs import JobState
from oven.lanes import Lane, lane_order
from oven.readiness import ReadinessBoard
from oven.store import JobRecord, QueuedJobs


@dataclass
class Run:
    """A job this instance holds the lease of (running, or parked in upload_pending).

    `task` is the run's whole life: the attempt, then settling its outcome in the store.
    `attempt` is the cancellable part (the pipeline); a cancel stops only it, so a cancel that
    lands while the outcome is being written cannot tear the write in half. `claim` is the
    store's token for this claim: every settle and renewal carries it.
    """

    record: JobRecord
    grab: GrabRequest
    target_url: str
    done: asyncio.Event = field(default_factory=asyncio.Event)
    stage: str = "navigate"
    started: float = field(default_factory=time.monotonic)
    task: asyncio.Task[None] | None = None
    attempt: asyncio.Task[Outcome] | None = None
    holds_page: bool = True
    lease_lost: bool = False
    cancel_requested: bool = False
    uploading: bool = False  # a parked job's upload is under way in the retry loop

    @property
    def claim(self) -> str | None:
        return self.record.claim


def parse_request(record: JobRecord) -> tuple[GrabRequest, str]:
    """The grab a stored job asked for, and its target URL (a field of the record; records
    written before schema 3 also carry it in the request, and the store fills the field)."""
    request = dict(record.request)
    request.pop("target_url", None)
    request.pop(CANCEL_DIGEST, None)
    if record.target_url is None:
        raise ValueError(f"job {record.id} names no target URL")
    return GrabRequest.model_validate(request), record.target_url


class Book:
    def __init__(self, settings: Settings, board: ReadinessBoard, instance: str) -> None:
        self.settings = settings
        self.board = board
        self.instance = instance
        self.runs: dict[str, Run] = {}
        self.pending_uploads: dict[str, Run] = {}
        self.capturing = 0  # page slots taken: by running captures and claims in flight
        self.cluster_pages: int | None = None  # set on an API instance (InstanceBeacon)
        # The shared queue as last read (every poll_s, and as jobs are admitted here): views
        # take positions from it and admission its depth.
        self.queued: list[JobRecord] = []
        self._queued_revisions: dict[str, int] = {}  # of self.queued's records, as last read
        # Jobs that left the queue through this instance (claimed, cancelled), with when: a
        # read of the queue begun before that still lists them, and must not bring them back.
        self._left: dict[str, float] = {}
        self.recent: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=settings.queue.recent_limit)
        self.service_times: collections.deque[float] = collections.deque(maxlen=20)
        # Set once the actor stops: no claims, and settling writes give up instead of retrying.
        self.stopping = False

    # -- the shared queue -----------------------------------------------------------------------

    def admitted(self, record: JobRecord) -> None:
        self.queued.append(record)
        self.queued.sort(key=_queue_order)
        self.gauge()

    def left_queue(self, job_id: str) -> None:
        """A job this instance took out of the queue (claimed it, cancelled it): out of the
        views at once, not at the next poll, and kept out by a read begun before."""
        self.queued = [r for r in self.queued if r.id != job_id]
        self._queued_revisions.pop(job_id, None)
        self._left[job_id] = time.monotonic()
        self.gauge()

    def held_queue(self) -> tuple[dict[str, JobRecord], dict[str, int], float]:
        """The queued records held and their revisions, taken before a read of the queue
        (which returns only the records new or changed since), and when the read began."""
        held = {r.id: r for r in self.queued if r.id in self._queued_revisions}
        return held, {i: self._queued_revisions[i] for i in held}, time.monotonic()

    def read_queue(self, held: dict[str, JobRecord], read: QueuedJobs, began: float) -> None:
        """Take a read of the shared queue begun at `began`: the ids still queued, with the
        records changed, less the jobs that left it here since the read began."""
        # A job that left before the read began is as the read says (requeued, if it lists it).
        self._left = {i: at for i, at in self._left.items() if at >= began}
        held = {**held, **read.records}
        revisions = {i: rev for i, rev in read.revisions.items() if i not in self._left}
        self.queued = [held[i] for i in revisions]
        self._queued_revisions = revisions
        self.queued.sort(key=_queue_order)
        self.gauge()

    def queued_record(self, job_id: str) -> JobRecord | None:
        return next((r for r in self.queued if r.id == job_id), None)

    def held(self, job_id: str) -> Run | None:
        return self.runs.get(job_id) or self.pending_uploads.get(job_id)

    def forget(self, run: Run) -> None:
        """Drop a run and wake whoever waits for it to settle."""
        # Only this run: a newer claim of the same job (after our lease lapsed) may be here too.
        for table in (self.runs, self.pending_uploads):
            if table.get(run.record.id) is run:
                del table[run.record.id]
        run.done.set()
        self.gauge()

    def finished(self, record: JobRecord) -> None:
        self.recent.appendleft(self.view_record(record))

    # -- views ----------------------------------------------------------------------------------

    def position(self, job_id: str) -> int | None:
        for index, record in enumerate(self.queued):
            if record.id == job_id:
                return index + 1
        return None

    def eta(self, position: int) -> float:
        per_job = (sum(self.service_times) / len(self.service_times)
                   if self.service_times else 2.0)
        return per_job * (position / max(1, self.pages) + 1)

    @property
    def pages(self) -> int:
        """Page slots running this queue: this instance's, or the live workers' for an API
        instance (cluster_pages, from their heartbeats)."""
        return self.settings.browser.pages if self.cluster_pages is None else self.cluster_pages

    def wait_over_deadline(self) -> float | None:
        """The estimated wait of a job queued now, when it is longer than a job's deadline:
        such a job would only fail "deadline passed" after waiting, so admission refuses it
        and /ready says `full` (a burst admitted ~400 jobs when ~300 could finish in time)."""
        if self.pages == 0:
            return None  # nobody runs the queue now: no estimate; max_queued alone bounds it
        wait = self.eta(len(self.queued))
        return wait if wait > self.settings.queue.deadline_s else None

    def view_record(self, record: JobRecord) -> dict[str, Any]:
        view = record_view(record)
        position = self.position(record.id) if record.state is JobState.QUEUED else None
        view.update(position=position,
                    eta_s=None if position is None else round(self.eta(position), 1))
        return view

    def view(self, run: Run) -> dict[str, Any]:
        view = self.view_record(run.record)
        if not run.record.state.is_final:
            view["stage"] = run.stage
        return view

    def status(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance,
            "capturing": self.capturing,
            "running": [self.view(r) for r in self.runs.values()],
            "queued": {lane.value: [self.view_record(r) for r in self.queued
                                    if r.lane is lane] for lane in Lane},
            "upload_pending": [self.view(r) for r in self.pending_uploads.values()],
            "recent": list(self.recent),
        }

    def gauge(self) -> None:
        depth = collections.Counter(r.lane for r in self.queued)
        for lane in Lane:
            metrics.QUEUE_DEPTH.labels(lane=lane.value).set(depth[lane])
        metrics.UPLOAD_PENDING.set(len(self.pending_uploads))
        queued, wait = len(self.queued), self.wait_over_deadline()
        if queued >= self.settings.queue.max_queued:
            self.board.set("full", f"{queued} jobs queued")
        elif wait is not None:
            self.board.set("full", f"{queued} jobs queued would take about {wait:.0f} s, "
                                   f"longer than a job's deadline")
        else:
            self.board.clear("full")


def _queue_order(record: JobRecord) -> tuple[int, float, str]:
    return (lane_order(record.lane), record.created_at, record.id)
