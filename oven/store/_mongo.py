"""MongoDB backend on pymongo's asyncio client (`AsyncMongoClient`, Motor's successor).

Tests run it against nx-27017, a wire-protocol server with known quirks (see DESIGN.md §8);
the places where a quirk could change the outcome say so.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    ConfigurationError,
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)

from oven._jobs import JobState
from oven.store._base import (
    ACTIVE_STATES,
    JobExists,
    JobNotFound,
    StaleState,
    StoreError,
    StoreUnavailable,
    check_doc_kind,
    plan_transition,
    validate_fields,
)
from oven.store._records import FrozenPiece, JobRecord

log = logging.getLogger(__name__)

Doc = dict[str, Any]

# Codes MongoDB answers when credentials or roles are wrong: a config problem, not a bug.
_AUTH_CODES = frozenset({13, 18})


def redact_uri(uri: str) -> str:
    """The URI without its user:password part, fit for logs and error messages."""
    return re.sub(r"//[^@/]*@", "//***@", uri)


def _to_doc(job: JobRecord) -> Doc:
    doc = job.model_dump(mode="json")
    doc["_id"] = doc.pop("id")
    doc["rev"] = 0
    return doc


def _to_job(doc: Doc) -> JobRecord:
    data = {k: v for k, v in doc.items() if k not in ("_id", "rev")}
    return JobRecord.model_validate({"id": doc["_id"], **data})


class MongoStore:
    """The Store protocol on MongoDB: collections `grabs`, `cache` and `frozen`."""

    def __init__(self, uri: str, database: str, *, timeout_s: float, recent_limit: int) -> None:
        self._uri = uri
        self._where = f"MongoDB at {redact_uri(uri)} (database {database!r})"
        self._database = database
        self._timeout_ms = int(timeout_s * 1000)
        self._recent_limit = recent_limit
        self._client: AsyncMongoClient[Doc] | None = None
        self._db: AsyncDatabase[Doc] | None = None

    def __repr__(self) -> str:
        return f"MongoStore({redact_uri(self._uri)!r}, {self._database!r})"

    # -- plumbing -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        """Turn "cannot reach or use the server" into StoreUnavailable; let bugs through."""
        try:
            yield
        except ConnectionFailure as exc:  # includes server selection and network timeouts
            raise StoreUnavailable(
                f"{self._where} not reachable within {self._timeout_ms / 1000:g} s: {exc}; "
                "check that the server runs and store.mongodb_uri / store.timeout_s"
            ) from exc
        except OperationFailure as exc:
            if exc.code in _AUTH_CODES:
                raise StoreUnavailable(
                    f"{self._where} refused access: {exc}; check the credentials in "
                    "store.mongodb_uri and the user's roles on the database"
                ) from exc
            raise
        except PyMongoError as exc:
            if exc.timeout:  # e.g. the operation ran past timeoutMS on a slow server
                raise StoreUnavailable(f"{self._where} timed out: {exc}") from exc
            raise

    def _col(self, name: str) -> AsyncCollection[Doc]:
        if self._db is None:
            raise StoreUnavailable(f"{self._where}: store is not started (call start())")
        return self._db[name]

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._client is not None:
            return
        try:
            # serverSelectionTimeoutMS bounds waiting for a server; timeoutMS bounds every
            # operation end to end, so no store call can hang the Store actor's loop.
            client: AsyncMongoClient[Doc] = AsyncMongoClient(
                self._uri,
                serverSelectionTimeoutMS=self._timeout_ms,
                connectTimeoutMS=self._timeout_ms,
                timeoutMS=self._timeout_ms,
                appname="oven",
            )
        except ConfigurationError as exc:
            raise StoreUnavailable(f"{self._where}: bad store.mongodb_uri: {exc}") from exc
        self._client, self._db = client, client[self._database]
        try:
            await self.ping()
            await self._create_indexes()
        except BaseException:
            await self.close()
            raise
        log.info("MongoDB store connected to %s", self._where)

    async def _create_indexes(self) -> None:
        # Ascending keys only: MongoDB walks an index both ways for sorts, and nx-27017 reports
        # descending compound keys as ascending (and renames indexes), so names and directions
        # here are ours to read, never something to compare against the server's listing.
        # `_id` (job id, cache key, frozen piece) is indexed and unique by MongoDB itself.
        async with self._guard():
            grabs = self._col("grabs")
            await grabs.create_index(
                [("capture_key", ASCENDING), ("state", ASCENDING)], name="capture_key_state"
            )
            await grabs.create_index(
                [("state", ASCENDING), ("created_at", ASCENDING)], name="state_created_at"
            )
            await grabs.create_index([("created_at", ASCENDING)], name="created_at")
            # MongoDB deletes expired entries itself (reads ignore them anyway: the TTL
            # monitor runs about once a minute, and nx-27017 may not run one at all).
            await self._col("cache").create_index(
                [("expire_at", ASCENDING)], name="expire_at_ttl", expireAfterSeconds=0
            )
            await self._col("frozen").create_index(
                [("frozen_until", ASCENDING)], name="frozen_until"
            )
            await self._col("docs").create_index(
                [("kind", ASCENDING), ("created_at", ASCENDING)], name="kind_created_at"
            )

    async def close(self) -> None:
        client, self._client, self._db = self._client, None, None
        if client is not None:
            await client.close()

    async def ping(self) -> None:
        if self._client is None:
            raise StoreUnavailable(f"{self._where}: store is not started (call start())")
        async with self._guard():
            await self._client.admin.command("ping")

    # -- jobs -----------------------------------------------------------------------------

    async def insert_job(self, job: JobRecord) -> None:
        async with self._guard():
            try:
                await self._col("grabs").insert_one(_to_doc(job))
            except DuplicateKeyError as exc:
                raise JobExists(job.id) from exc

    async def get_job(self, job_id: str) -> JobRecord | None:
        async with self._guard():
            doc = await self._col("grabs").find_one({"_id": job_id})
        return None if doc is None else _to_job(doc)

    async def transition(
        self,
        job_id: str,
        to: JobState,
        *,
        expect: JobState | None = None,
        note: str | None = None,
        **fields: Any,
    ) -> JobRecord:
        grabs = self._col("grabs")
        async with self._guard():
            doc = await grabs.find_one({"_id": job_id})
            if doc is None:
                raise JobNotFound(job_id)
            job = _to_job(doc)
            values = plan_transition(
                job, to, expect=expect, note=note, fields=fields, now=time.time()
            )
            # The whole history is $set rather than $push'ed: nx-27017 stores a $push'ed
            # document as a JSON string. Safe because the filter pins `rev`, which every
            # transition bumps: a writer that read an older history cannot match.
            # (nx-27017 also rounds top-level doubles written by $set to 15 significant
            # digits, ~10 us for epoch seconds: never compare stored times exactly.)
            after = await grabs.find_one_and_update(
                {"_id": job_id, "state": job.state.value, "rev": doc["rev"]},
                {"$set": {**values, "rev": doc["rev"] + 1}},
                return_document=ReturnDocument.AFTER,
            )
            if after is None:
                # MongoDB: no document matched, i.e. another writer moved the job first.
                # nx-27017 also answers None for a unique-index violation, which cannot
                # happen here: only `_id` is unique and this update leaves it alone.
                current = await grabs.find_one({"_id": job_id}, {"state": 1})
                actual = None if current is None else JobState(current["state"])
                raise StaleState(job_id, expect or job.state, actual)
        return _to_job(after)

    async def update_job(self, job_id: str, **fields: Any) -> JobRecord:
        values = {**validate_fields(job_id, fields), "updated_at": time.time()}
        async with self._guard():
            after = await self._col("grabs").find_one_and_update(
                {"_id": job_id}, {"$set": values}, return_document=ReturnDocument.AFTER
            )
        if after is None:
            raise JobNotFound(job_id)
        return _to_job(after)

    async def find_active(self, capture_key: str) -> JobRecord | None:
        query = {"capture_key": capture_key, "state": {"$in": [s.value for s in ACTIVE_STATES]}}
        async with self._guard():
            doc = await self._col("grabs").find_one(
                query, sort=[("created_at", ASCENDING), ("_id", ASCENDING)]
            )
        return None if doc is None else _to_job(doc)

    async def list_jobs(
        self,
        states: set[JobState] | None = None,
        *,
        limit: int | None = None,
        newest_first: bool = True,
    ) -> list[JobRecord]:
        if states is not None and not states:
            return []
        query: Doc = {} if states is None else {"state": {"$in": [s.value for s in states]}}
        direction = -1 if newest_first else 1
        cursor = (
            self._col("grabs")
            .find(query)
            .sort([("created_at", direction), ("_id", direction)])
            .limit(self._recent_limit if limit is None else limit)
        )
        async with self._guard():
            docs = await cursor.to_list()
        return [_to_job(doc) for doc in docs]

    async def count_by_state(self) -> dict[JobState, int]:
        counts = dict.fromkeys(JobState, 0)
        async with self._guard():
            cursor = await self._col("grabs").aggregate(
                [{"$group": {"_id": "$state", "n": {"$sum": 1}}}]
            )
            for row in await cursor.to_list():
                counts[JobState(row["_id"])] = int(row["n"])
        return counts

    # -- result cache ---------------------------------------------------------------------

    async def cache_get(self, key: str) -> dict[str, Any] | None:
        async with self._guard():
            doc = await self._col("cache").find_one(
                {"_id": key, "expires_at": {"$gt": time.time()}}
            )
        return None if doc is None else dict(doc["result"])

    async def cache_put(self, key: str, result: dict[str, Any], ttl_s: float) -> None:
        expires_at = time.time() + ttl_s
        doc = {
            "_id": key,
            "result": result,
            "expires_at": expires_at,  # what reads compare: exact, whatever the TTL monitor does
            "expire_at": datetime.fromtimestamp(expires_at, tz=UTC),  # for the TTL index
        }
        async with self._guard():
            await self._col("cache").replace_one({"_id": key}, doc, upsert=True)

    async def cache_delete(self, key: str) -> bool:
        async with self._guard():
            deleted = await self._col("cache").delete_one({"_id": key})
        return deleted.deleted_count > 0

    # -- frozen pieces --------------------------------------------------------------------

    async def record_piece_failure(self, piece: str, reason: str) -> int:
        update = {
            "$inc": {"failures": 1},
            "$set": {"last_reason": reason, "last_failure_at": time.time()},
        }
        async with self._guard():
            # Two first failures racing can collide on the new `_id`: MongoDB then raises
            # DuplicateKeyError, nx-27017 returns None instead. Either way the document
            # exists now, so a second try increments it.
            for _ in range(2):
                try:
                    after = await self._col("frozen").find_one_and_update(
                        {"_id": piece}, update, upsert=True, return_document=ReturnDocument.AFTER
                    )
                except DuplicateKeyError:
                    continue
                if after is not None:
                    return int(after["failures"])
        raise StoreError(f"piece {piece!r}: could not record a failure (upsert kept colliding)")

    async def record_piece_success(self, piece: str) -> None:
        async with self._guard():
            await self._col("frozen").update_one({"_id": piece}, {"$set": {"failures": 0}})

    async def freeze(self, piece: str, until: float, reason: str) -> None:
        values = {"frozen_until": until, "reason": reason, "frozen_at": time.time()}
        async with self._guard():
            await self._col("frozen").update_one({"_id": piece}, {"$set": values}, upsert=True)

    async def frozen_until(self, piece: str) -> float | None:
        async with self._guard():
            doc = await self._col("frozen").find_one(
                {"_id": piece, "frozen_until": {"$gt": time.time()}}
            )
        return None if doc is None else float(doc["frozen_until"])

    async def list_frozen(self) -> list[FrozenPiece]:
        cursor = (
            self._col("frozen")
            .find({"frozen_until": {"$gt": time.time()}})
            .sort([("frozen_until", ASCENDING), ("_id", ASCENDING)])
        )
        async with self._guard():
            docs = await cursor.to_list()
        return [
            FrozenPiece(
                piece=doc["_id"],
                frozen_until=doc["frozen_until"],
                reason=doc.get("reason"),
                frozen_at=doc.get("frozen_at"),
                failures=doc.get("failures", 0),
            )
            for doc in docs
        ]

    async def unfreeze(self, piece: str) -> bool:
        cleared = {"frozen_until": None, "reason": None, "frozen_at": None, "failures": 0}
        async with self._guard():
            updated = await self._col("frozen").update_one(
                {"_id": piece, "frozen_until": {"$gt": time.time()}}, {"$set": cleared}
            )
        return updated.matched_count > 0

    # -- documents (bakes, webhook deliveries, ...) ----------------------------------------

    async def put_doc(self, kind: str, doc_id: str, body: dict[str, Any]) -> None:
        check_doc_kind(kind)
        now = time.time()
        async with self._guard():
            await self._col("docs").update_one(
                {"_id": f"{kind}:{doc_id}"},
                {"$set": {"kind": kind, "body": body, "updated_at": now},
                 "$setOnInsert": {"created_at": now}},
                upsert=True,
            )

    async def get_doc(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        check_doc_kind(kind)
        async with self._guard():
            doc = await self._col("docs").find_one({"_id": f"{kind}:{doc_id}"})
        return None if doc is None else dict(doc["body"])

    async def list_docs(self, kind: str, *, limit: int = 100) -> list[dict[str, Any]]:
        check_doc_kind(kind)
        cursor = (
            self._col("docs")
            .find({"kind": kind})
            .sort([("created_at", -1), ("_id", -1)])
            .limit(limit)
        )
        async with self._guard():
            docs = await cursor.to_list()
        return [dict(doc["body"]) for doc in docs]
