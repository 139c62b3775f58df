"""Store actor: owns the metadata backend (SQLite or MongoDB) on its own loop."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from oven.actors.runtime import ActorContext, AsyncActor, ask_async
from oven.config import Settings
from oven.jobs import JobState
from oven.readiness import ReadinessBoard
from oven.store import (
    FrozenPiece,
    JobRecord,
    QueuedJobs,
    Store,
    StoreUnavailable,
    make_store,
)

log = logging.getLogger(__name__)

# The Store protocol's operations a StoreCall may name (nothing else on the object is reachable).
OPERATIONS = frozenset(
    {
        "insert_job",
        "get_job",
        "transition",
        "update_job",
        "find_active",
        "list_jobs",
        "count_by_state",
        "queued_jobs",
        "cache_get",
        "cache_put",
        "cache_delete",
        "record_piece_failure",
        "record_piece_success",
        "freeze",
        "frozen_until",
        "list_frozen",
        "unfreeze",
        "ping",
        "claim_next",
        "renew_lease",
        "expired_leases",
        "put_doc",
        "get_doc",
        "list_docs",
    }
)


@dataclass(frozen=True)
class StoreCall:
    operation: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


class StoreActor(AsyncActor):
    """Serialises nothing itself: each call is a coroutine on the loop, answered when done."""

    def __init__(self, ctx: ActorContext, settings: Settings, board: ReadinessBoard) -> None:
        super().__init__(ctx)
        self.settings = settings
        self.board = board
        self.store: Store | None = None

    async def start_async(self) -> None:
        self.store = make_store(self.settings.store, self.settings.server.data_dir)
        await self.store.start()
        self.own("reachability", self._watch_reachability)

    async def stop_async(self) -> None:
        if self.store is not None:
            await self.store.close()

    async def _watch_reachability(self) -> None:
        assert self.store is not None
        while True:
            try:
                await self.store.ping()
                self.board.clear("store")
            except Exception as exc:
                # Any failed ping, translated by the backend or not, means new work cannot be
                # recorded: not ready, with the reason as the backend put it.
                self.board.set("store", str(exc) or type(exc).__name__)
            await asyncio.sleep(2.0)

    def receive(self, message: Any) -> Any:
        match message:
            case StoreCall(operation=op, args=args, kwargs=kwargs):
                if op not in OPERATIONS:
                    raise ValueError(f"store has no operation {op!r}")
                return self.defer(self._call(op, args, kwargs))
        return super().receive(message)

    async def _call(self, op: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        assert self.store is not None
        try:
            result = await getattr(self.store, op)(*args, **kwargs)
        except StoreUnavailable as exc:
            self.board.set("store", str(exc))
            raise
        return result


class StoreClient:
    """Typed async handle on the Store actor, resolved by name on every call."""

    def __init__(self, lookup: Any, *, timeout_s: float) -> None:
        self._lookup = lookup
        self.timeout_s = timeout_s

    async def _call(self, op: str, *args: Any, **kwargs: Any) -> Any:
        return await ask_async(
            self._lookup.ref("store"), StoreCall(op, args, kwargs), timeout=self.timeout_s
        )

    async def insert_job(self, job: JobRecord) -> None:
        await self._call("insert_job", job)

    async def get_job(self, job_id: str) -> JobRecord | None:
        result: JobRecord | None = await self._call("get_job", job_id)
        return result

    async def transition(
        self,
        job_id: str,
        to: JobState,
        *,
        expect: JobState | None = None,
        expect_owner: str | None = None,
        expect_lease_before: float | None = None,
        expect_claim: str | None = None,
        note: str | None = None,
        **fields: Any,
    ) -> JobRecord:
        result: JobRecord = await self._call(
            "transition", job_id, to, expect=expect, expect_owner=expect_owner,
            expect_lease_before=expect_lease_before, expect_claim=expect_claim, note=note,
            **fields
        )
        return result

    async def claim_next(self, owner: str, lanes: list[str], *, lease_s: float
                         ) -> JobRecord | None:
        result: JobRecord | None = await self._call("claim_next", owner, lanes, lease_s=lease_s)
        return result

    async def renew_lease(self, job_id: str, owner: str, *, lease_s: float,
                          claim: str | None = None) -> bool:
        result: bool = await self._call("renew_lease", job_id, owner, lease_s=lease_s,
                                        claim=claim)
        return result

    async def expired_leases(self, *, now: float) -> list[JobRecord]:
        result: list[JobRecord] = await self._call("expired_leases", now=now)
        return result

    async def update_job(self, job_id: str, **fields: Any) -> JobRecord:
        result: JobRecord = await self._call("update_job", job_id, **fields)
        return result

    async def find_active(self, key: str) -> JobRecord | None:
        result: JobRecord | None = await self._call("find_active", key)
        return result

    async def list_jobs(
        self,
        states: set[JobState] | None = None,
        *,
        limit: int | None = None,
        newest_first: bool = True,
    ) -> list[JobRecord]:
        result: list[JobRecord] = await self._call(
            "list_jobs", states, limit=limit, newest_first=newest_first
        )
        return result

    async def queued_jobs(self, *, limit: int, known: dict[str, int]) -> QueuedJobs:
        result: QueuedJobs = await self._call("queued_jobs", limit=limit, known=known)
        return result

    async def cache_get(self, key: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = await self._call("cache_get", key)
        return result

    async def cache_put(self, key: str, result: dict[str, Any], ttl_s: float) -> None:
        await self._call("cache_put", key, result, ttl_s)

    async def cache_delete(self, key: str) -> bool:
        deleted: bool = await self._call("cache_delete", key)
        return deleted

    async def record_piece_failure(self, piece: str, reason: str) -> int:
        count: int = await self._call("record_piece_failure", piece, reason)
        return count

    async def record_piece_success(self, piece: str) -> None:
        await self._call("record_piece_success", piece)

    async def freeze(self, piece: str, until: float, reason: str) -> None:
        await self._call("freeze", piece, until, reason)

    async def frozen_until(self, piece: str) -> float | None:
        result: float | None = await self._call("frozen_until", piece)
        return result

    async def list_frozen(self) -> list[FrozenPiece]:
        result: list[FrozenPiece] = await self._call("list_frozen")
        return result

    async def unfreeze(self, piece: str) -> bool:
        result: bool = await self._call("unfreeze", piece)
        return result

    async def put_doc(self, kind: str, doc_id: str, body: dict[str, Any]) -> None:
        await self._call("put_doc", kind, doc_id, body)

    async def get_doc(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = await self._call("get_doc", kind, doc_id)
        return result

    async def list_docs(self, kind: str, *, limit: int = 100) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._call("list_docs", kind, limit=limit)
        return result
