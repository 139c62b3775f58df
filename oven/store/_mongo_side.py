"""The MongoDB store's side collections: result cache, frozen pieces, documents and
instances.

Each is an object MongoStore (oven/store/_mongo.py) holds, on the store's one MongoDatabase.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from oven.store._base import check_doc_kind
from oven.store._errors import StoreError
from oven.store._mongo_db import MongoDatabase
from oven.store._records import FrozenPiece, InstanceRecord


async def live_result(mongo: MongoDatabase, key: str) -> dict[str, Any] | None:
    """The key's cached result unless it has expired (the caller holds the guard)."""
    doc = await mongo.col("cache").find_one({"_id": key, "expires_at": {"$gt": time.time()}})
    return None if doc is None else dict(doc["result"])


class MongoCache:
    """Finished results by capture key, each until its expiry."""

    def __init__(self, mongo: MongoDatabase) -> None:
        self._mongo = mongo

    async def get(self, key: str) -> dict[str, Any] | None:
        async with self._mongo.guard():
            return await live_result(self._mongo, key)

    async def put(self, key: str, result: dict[str, Any], ttl_s: float) -> None:
        expires_at = time.time() + ttl_s
        doc = {
            "_id": key,
            "result": result,
            "expires_at": expires_at,  # what reads compare: exact, whatever the TTL monitor does
            "expire_at": datetime.fromtimestamp(expires_at, tz=UTC),  # for the TTL index
        }
        async with self._mongo.guard():
            await self._mongo.col("cache").replace_one({"_id": key}, doc, upsert=True)

    async def delete(self, key: str) -> bool:
        async with self._mongo.guard():
            deleted = await self._mongo.col("cache").delete_one({"_id": key})
        return deleted.deleted_count > 0



class MongoFreezes:
    """Consecutive failures per piece, and the pieces frozen for a while after too many."""

    def __init__(self, mongo: MongoDatabase) -> None:
        self._mongo = mongo

    async def record_failure(self, piece: str, reason: str) -> int:
        now = time.time()
        update = {
            "$inc": {"failures": 1},
            "$set": {"last_reason": reason, "last_failure_at": now},
        }
        async with self._mongo.guard():
            # A freeze that has run out starts the count afresh: one more failure after it
            # must not freeze the piece again at once.
            await self._mongo.col("frozen").update_one(
                {"_id": piece, "frozen_until": {"$lte": now}},
                {"$set": {"failures": 0, "frozen_until": None, "reason": None,
                          "frozen_at": None}})
            # Two first failures racing can collide on the new `_id`: MongoDB then raises
            # DuplicateKeyError, nx-27017 returns None instead. Either way the document
            # exists now, so a second try increments it.
            for _ in range(2):
                try:
                    after = await self._mongo.col("frozen").find_one_and_update(
                        {"_id": piece}, update, upsert=True, return_document=ReturnDocument.AFTER
                    )
                except DuplicateKeyError:
                    continue
                if after is not None:
                    return int(after["failures"])
        raise StoreError(f"piece {piece!r}: could not record a failure (upsert kept colliding)")

    async def record_success(self, piece: str) -> None:
        async with self._mongo.guard():
            await self._mongo.col("frozen").update_one({"_id": piece}, {"$set": {"failures": 0}})

    async def freeze(self, piece: str, until: float, reason: str) -> None:
        values = {"frozen_until": until, "reason": reason, "frozen_at": time.time()}
        async with self._mongo.guard():
            await self._mongo.col("frozen").update_one(
                {"_id": piece}, {"$set": values}, upsert=True)

    async def frozen_until(self, piece: str) -> float | None:
        async with self._mongo.guard():
            doc = await self._mongo.col("frozen").find_one(
                {"_id": piece, "frozen_until": {"$gt": time.time()}}
            )
        return None if doc is None else float(doc["frozen_until"])

    async def list_frozen(self) -> list[FrozenPiece]:
        cursor = (
            self._mongo.col("frozen")
            .find({"frozen_until": {"$gt": time.time()}})
            .sort([("frozen_until", ASCENDING), ("_id", ASCENDING)])
        )
        async with self._mongo.guard():
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
        async with self._mongo.guard():
            frozen = await self._mongo.col("frozen").find_one(
                {"_id": piece, "frozen_until": {"$gt": time.time()}})
            # Also the count an expired freeze left behind: an unfrozen piece starts afresh.
            await self._mongo.col("frozen").update_one({"_id": piece}, {"$set": cleared})
        return frozen is not None



class MongoDocs:
    """Small JSON documents other rooms keep (bakes, webhook deliveries), by (kind, id)."""

    def __init__(self, mongo: MongoDatabase) -> None:
        self._mongo = mongo

    async def put(self, kind: str, doc_id: str, body: dict[str, Any]) -> None:
        check_doc_kind(kind)
        now = time.time()
        async with self._mongo.guard():
            await self._mongo.col("docs").update_one(
                {"_id": f"{kind}:{doc_id}"},
                {"$set": {"kind": kind, "body": body, "updated_at": now},
                 "$setOnInsert": {"created_at": now}},
                upsert=True,
            )

    async def get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        check_doc_kind(kind)
        async with self._mongo.guard():
            doc = await self._mongo.col("docs").find_one({"_id": f"{kind}:{doc_id}"})
        return None if doc is None else dict(doc["body"])

    async def newest(self, kind: str, *, limit: int = 100) -> list[dict[str, Any]]:
        check_doc_kind(kind)
        cursor = (
            self._mongo.col("docs")
            .find({"kind": kind})
            .sort([("created_at", -1), ("_id", -1)])
            .limit(limit)
        )
        async with self._mongo.guard():
            docs = await cursor.to_list()
        return [dict(doc["body"]) for doc in docs]


class MongoInstances:
    """Each instance's last heartbeat, one document per instance id (`_id`)."""

    def __init__(self, mongo: MongoDatabase) -> None:
        self._mongo = mongo

    async def beat(self, instance: InstanceRecord) -> None:
        body = {"_id": instance.id, **instance.model_dump(mode="json", exclude={"id"})}
        async with self._mongo.guard():
            await self._mongo.col("instances").replace_one(
                {"_id": instance.id}, body, upsert=True)

    async def seen_since(self, since: float) -> list[InstanceRecord]:
        cursor = (self._mongo.col("instances").find({"heartbeat_at": {"$gte": since}})
                  .sort([("_id", ASCENDING)]))
        async with self._mongo.guard():
            docs = await cursor.to_list()
        return [InstanceRecord.model_validate({**doc, "id": doc["_id"]}) for doc in docs]

    async def forget(self, silent_before: float) -> int:
        async with self._mongo.guard():
            result = await self._mongo.col("instances").delete_many(
                {"heartbeat_at": {"$lt": silent_before}})
        return int(result.deleted_count)
