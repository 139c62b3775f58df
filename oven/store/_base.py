"""The Store contract both backends keep and the transition rules they share (the lease
rules among them are in oven/store/_leases.py)."""

from __future__ import annotations

import inspect
import re
from functools import cache
from typing import Annotated, Any, Protocol

from pydantic import TypeAdapter, ValidationError

from oven.jobs import JobState, check_transition
from oven.store._errors import StaleState
from oven.store._leases import check_holder, released
from oven.store._records import FrozenPiece, HistoryEntry, InstanceRecord, JobRecord, QueuedJobs

# A job in one of these states owns its capture key: a second request for the key attaches to it.
ACTIVE_STATES = frozenset({JobState.QUEUED, JobState.RUNNING, JobState.UPLOAD_PENDING})

# Fields only the store writes: state and history move together through `transition`.
_MANAGED_FIELDS = frozenset({"id", "state", "history", "created_at", "updated_at"})


class StoreOperations(Protocol):
    """What callers ask of the store: every coroutine method here is an operation the Store
    actor serves and its client forwards (oven.actors.store), with this signature.

    `self` is positional-only where the method takes `**fields`, so a forwarded signature
    can stand for it (a field named `self` would otherwise be ambiguous to the type checker).
    """

    async def ping(self) -> None: ...

    # Inserting a job also takes its capture key: while the job is active (queued, running,
    # upload_pending) no other job with the key can be inserted (CaptureKeyBusy names the
    # holder); a transition to a final state releases the key. A key whose result is cached
    # once the insert owns it is not taken: CaptureCached carries the result.
    async def insert_job(self, job: JobRecord) -> None: ...
    async def get_job(self, job_id: str) -> JobRecord | None: ...
    async def transition(
        self,
        /,
        job_id: str,
        to: JobState,
        *,
        expect: JobState | None = None,
        expect_owner: str | None = None,
        expect_lease_before: float | None = None,
        expect_claim: str | None = None,
        note: str | None = None,
        **fields: Any,
    ) -> JobRecord: ...

    # Leases: a worker claims the oldest queued job of the first lane that has one (state
    # running, owner, a new claim token, lease_expires_at = now + lease_s, attempts + 1); it
    # renews the lease while the job runs or waits in upload_pending; a job whose lease ran out
    # is requeued by whoever notices (transition with expect_lease_before), so a dead
    # instance's work is taken over. A transition with expect_claim is idempotent: when the job
    # is already in the target state under that claim (a retried write whose first try landed
    # late), it answers the record unchanged.
    async def claim_next(
        self, owner: str, lanes: list[str], *, lease_s: float
    ) -> JobRecord | None: ...
    async def renew_lease(
        self, job_id: str, owner: str, *, lease_s: float, claim: str | None = None
    ) -> bool: ...
    async def expired_leases(self, *, now: float) -> list[JobRecord]: ...

    async def update_job(self, /, job_id: str, **fields: Any) -> JobRecord: ...
    async def find_active(self, capture_key: str) -> JobRecord | None: ...
    async def list_jobs(
        self,
        states: set[JobState] | None = None,
        *,
        limit: int | None = None,
        newest_first: bool = True,
    ) -> list[JobRecord]: ...
    async def count_by_state(self) -> dict[JobState, int]: ...
    # The queue's poll: every queued job's id and revision (the oldest `limit`, by creation
    # time then id), with records only for jobs absent from `known` (id -> revision) or written
    # since. Parsing a full record is the costly part of a read, and most of the queue is
    # unchanged between two polls.
    async def queued_jobs(self, *, limit: int, known: dict[str, int]) -> QueuedJobs: ...

    async def cache_get(self, key: str) -> dict[str, Any] | None: ...
    async def cache_put(self, key: str, result: dict[str, Any], ttl_s: float) -> None: ...
    async def cache_delete(self, key: str) -> bool: ...

    async def record_piece_failure(self, piece: str, reason: str) -> int: ...
    async def record_piece_success(self, piece: str) -> None: ...
    async def freeze(self, piece: str, until: float, reason: str) -> None: ...
    async def frozen_until(self, piece: str) -> float | None: ...
    async def list_frozen(self) -> list[FrozenPiece]: ...
    async def unfreeze(self, piece: str) -> bool: ...

    # Small JSON documents other rooms keep (bakes, webhook deliveries): upsert by (kind, id),
    # listed newest first.
    async def put_doc(self, kind: str, doc_id: str, body: dict[str, Any]) -> None: ...
    async def get_doc(self, kind: str, doc_id: str) -> dict[str, Any] | None: ...
    async def list_docs(self, kind: str, *, limit: int = 100) -> list[dict[str, Any]]: ...

    # Instance heartbeats: one record per instance id, replaced by each beat; listed by id.
    async def beat_instance(self, instance: InstanceRecord) -> None: ...
    async def list_instances(self, *, seen_since: float) -> list[InstanceRecord]: ...
    async def forget_instances(self, *, silent_before: float) -> int: ...


class Store(StoreOperations, Protocol):
    """Metadata + durable job queue. Plain async methods; the Store actor owns the loop and
    alone opens and closes the backend."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...


class ResultCache(Protocol):
    async def get(self, key: str) -> dict[str, Any] | None: ...
    async def put(self, key: str, result: dict[str, Any], ttl_s: float) -> None: ...
    async def delete(self, key: str) -> bool: ...


class PieceFreezes(Protocol):
    async def record_failure(self, piece: str, reason: str) -> int: ...
    async def record_success(self, piece: str) -> None: ...
    async def freeze(self, piece: str, until: float, reason: str) -> None: ...
    async def frozen_until(self, piece: str) -> float | None: ...
    async def list_frozen(self) -> list[FrozenPiece]: ...
    async def unfreeze(self, piece: str) -> bool: ...


class Documents(Protocol):
    async def put(self, kind: str, doc_id: str, body: dict[str, Any]) -> None: ...
    async def get(self, kind: str, doc_id: str) -> dict[str, Any] | None: ...
    async def newest(self, kind: str, *, limit: int = 100) -> list[dict[str, Any]]: ...


class Instances(Protocol):
    async def beat(self, instance: InstanceRecord) -> None: ...
    async def seen_since(self, since: float) -> list[InstanceRecord]: ...
    async def forget(self, silent_before: float) -> int: ...


class SideTables:
    """The side tables' part of StoreOperations, answered by the tables a backend hands in
    (its own, on its own connection), so the backend's module keeps to jobs."""

    def __init__(self, cache: ResultCache, freezes: PieceFreezes, docs: Documents,
                 instances: Instances) -> None:
        self.cache = cache
        self.freezes = freezes
        self.docs = docs
        self.instances = instances

    async def cache_get(self, key: str) -> dict[str, Any] | None:
        return await self.cache.get(key)

    async def cache_put(self, key: str, result: dict[str, Any], ttl_s: float) -> None:
        await self.cache.put(key, result, ttl_s)

    async def cache_delete(self, key: str) -> bool:
        return await self.cache.delete(key)

    async def record_piece_failure(self, piece: str, reason: str) -> int:
        return await self.freezes.record_failure(piece, reason)

    async def record_piece_success(self, piece: str) -> None:
        await self.freezes.record_success(piece)

    async def freeze(self, piece: str, until: float, reason: str) -> None:
        await self.freezes.freeze(piece, until, reason)

    async def frozen_until(self, piece: str) -> float | None:
        return await self.freezes.frozen_until(piece)

    async def list_frozen(self) -> list[FrozenPiece]:
        return await self.freezes.list_frozen()

    async def unfreeze(self, piece: str) -> bool:
        return await self.freezes.unfreeze(piece)

    async def put_doc(self, kind: str, doc_id: str, body: dict[str, Any]) -> None:
        await self.docs.put(kind, doc_id, body)

    async def get_doc(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        return await self.docs.get(kind, doc_id)

    async def list_docs(self, kind: str, *, limit: int = 100) -> list[dict[str, Any]]:
        return await self.docs.newest(kind, limit=limit)

    async def beat_instance(self, instance: InstanceRecord) -> None:
        await self.instances.beat(instance)

    async def list_instances(self, *, seen_since: float) -> list[InstanceRecord]:
        return await self.instances.seen_since(seen_since)

    async def forget_instances(self, *, silent_before: float) -> int:
        return await self.instances.forget(silent_before)


def store_operations() -> frozenset[str]:
    """The names of StoreOperations' methods: what the Store actor may be asked to run."""
    return frozenset(name for name, member in vars(StoreOperations).items()
                     if not name.startswith("_") and inspect.iscoroutinefunction(member))


_DOC_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def check_doc_kind(kind: str) -> None:
    if not _DOC_KIND.match(kind):
        raise ValueError(f"document kind {kind!r}: use 1-32 lowercase letters, digits or _")


@cache
def _field_adapter(name: str) -> TypeAdapter[Any]:
    info = JobRecord.model_fields[name]
    annotation: Any = info.annotation
    if not info.metadata:
        return TypeAdapter(annotation)
    # Keep the field's constraints (e.g. attempts >= 0), not just its bare type.
    return TypeAdapter(Annotated[annotation, *info.metadata])


def validate_fields(job_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Check caller-supplied job fields and return them as JSON-ready values."""
    unknown = sorted(set(fields) - set(JobRecord.model_fields))
    if unknown:
        raise ValueError(f"job {job_id}: unknown field(s) {unknown}")
    managed = sorted(set(fields) & _MANAGED_FIELDS)
    if managed:
        raise ValueError(f"job {job_id}: {managed} are written by the store (use transition)")
    out: dict[str, Any] = {}
    for name, value in fields.items():
        adapter = _field_adapter(name)
        try:
            out[name] = adapter.dump_python(adapter.validate_python(value), mode="json")
        except ValidationError as exc:
            raise ValueError(f"job {job_id}: bad value for {name!r}: {exc}") from exc
    return out


def plan_transition(
    job: JobRecord,
    to: JobState,
    *,
    expect: JobState | None,
    note: str | None,
    fields: dict[str, Any],
    now: float,
    expect_owner: str | None = None,
    expect_lease_before: float | None = None,
    expect_claim: str | None = None,
) -> dict[str, Any]:
    """The JSON-ready column values a transition writes, or the error it raises.

    The caller must write them conditionally on `job.state` (and its revision), so a writer
    that read an older copy loses instead of overwriting.
    """
    if expect is not None and job.state != expect:
        raise StaleState(job.id, expect, job.state)
    check_holder(job, expect_owner=expect_owner, expect_claim=expect_claim,
                 expect_lease_before=expect_lease_before)
    check_transition(job.id, job.state, to)
    values = validate_fields(job.id, released(job.id, to, fields))
    entry = HistoryEntry(state=to, at=now, note=note)
    history = [h.model_dump(mode="json") for h in (*job.history, entry)]
    return {**values, "state": to.value, "updated_at": now, "history": history}
