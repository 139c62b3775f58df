"""MongoDB backend on pymongo's asyncio client (`AsyncMongoClient`, Motor's successor).

Tests run it against nx-27017, a wire-protocol server with known quirks (see DESIGN.md §8);
the places where a quirk could change the outcome say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import (
    DuplicateKeyError,
)

from oven.jobs import JobState
from oven.store._base import ACTIVE_STATES, SideTables, plan_transition, validate_fields
from oven.store._errors import (
    CaptureCached,
    CaptureKeyBusy,
    JobExists,
    JobNotFound,
    StaleState,
    StoreError,
)
from oven.store._leases import LEASED_STATE_VALUES, already_settled, claim, lease_expiry
from oven.store._mongo_db import Doc, MongoDatabase
from oven.store._mongo_side import (
    MongoCache,
    MongoDocs,
    MongoFreezes,
    MongoInstances,
    live_result,
)
from oven.store._records import JobRecord, QueuedJobs

log = logging.getLogger(__name__)

# How many queued jobs a claim tries before giving up the pass (others may be taking them too).
_CLAIM_CANDIDATES = 8
# A capture key's flight is written just before its job: a missing job this young is in flight.
_FLIGHT_INSERT_GRACE_S = 5.0
_FLIGHT_TRIES = 200


def _to_doc(job: JobRecord) -> Doc:
    doc = job.model_dump(mode="json")
    doc["_id"] = doc.pop("id")
    doc["rev"] = 0
    return doc


def _to_job(doc: Doc) -> JobRecord:
    data = {k: v for k, v in doc.items() if k not in ("_id", "rev")}
    return JobRecord.model_validate({"id": doc["_id"], **data})


class MongoStore(SideTables):
    """The Store protocol on MongoDB: jobs in `grabs` (and capture keys in `flights`) here; the
    result cache, frozen pieces and documents in the side collections it holds (forwarded by
    SideTables)."""

    def __init__(self, uri: str, database: str, *, timeout_s: float, recent_limit: int) -> None:
        self._mongo = MongoDatabase(uri, database, timeout_s=timeout_s)
        self._recent_limit = recent_limit
        super().__init__(MongoCache(self._mongo), MongoFreezes(self._mongo),
                         MongoDocs(self._mongo), MongoInstances(self._mongo))

    def __repr__(self) -> str:
        return f"MongoStore({self._mongo.label})"

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._mongo.started:
            return
        await self._mongo.start()
        try:
            await self._create_indexes()
        except BaseException:
            await self._mongo.close()
            raise
        log.info("MongoDB store connected to %s", self._mongo.where)

    async def _create_indexes(self) -> None:
        # Ascending keys only: MongoDB walks an index both ways for sorts, and nx-27017 reports
        # descending compound keys as ascending (and renames indexes), so names and directions
        # here are ours to read, never something to compare against the server's listing.
        # `_id` (job id, cache key, frozen piece) is indexed and unique by MongoDB itself.
        async with self._mongo.guard():
            grabs = self._mongo.col("grabs")
            await grabs.create_index(
                [("capture_key", ASCENDING), ("state", ASCENDING)], name="capture_key_state"
            )
            await grabs.create_index(
                [("state", ASCENDING), ("created_at", ASCENDING)], name="state_created_at"
            )
            await grabs.create_index([("created_at", ASCENDING)], name="created_at")
            await grabs.create_index(
                [("state", ASCENDING), ("lane", ASCENDING), ("created_at", ASCENDING)],
                name="state_lane_created_at",
            )
            # MongoDB deletes expired entries itself (reads ignore them anyway: the TTL
            # monitor runs about once a minute, and nx-27017 may not run one at all).
            await self._mongo.col("cache").create_index(
                [("expire_at", ASCENDING)], name="expire_at_ttl", expireAfterSeconds=0
            )
            await self._mongo.col("frozen").create_index(
                [("frozen_until", ASCENDING)], name="frozen_until"
            )
            await self._mongo.col("docs").create_index(
                [("kind", ASCENDING), ("created_at", ASCENDING)], name="kind_created_at"
            )
            await self._mongo.col("instances").create_index(
                [("heartbeat_at", ASCENDING)], name="heartbeat_at"
            )

    async def close(self) -> None:
        await self._mongo.close()

    async def ping(self) -> None:
        await self._mongo.ping()

    # -- jobs -----------------------------------------------------------------------------

    async def insert_job(self, job: JobRecord) -> None:
        async with self._mongo.guard():
            await self._take_flight(job)
            # A completing holder caches its result before it releases the key, so owning the
            # key now means any result of the capture it held is visible here.
            try:
                cached = await live_result(self._mongo, job.capture_key)
                if cached is not None:
                    raise CaptureCached(job.capture_key, cached)
            except BaseException:
                # No job was written: give the key back rather than leave others to wait out
                # the flight's insert grace.
                with contextlib.suppress(Exception):
                    await self._give_back_flight(job)
                raise
            try:
                await self._mongo.col("grabs").insert_one(_to_doc(job))
            except DuplicateKeyError as exc:
                await self._give_back_flight(job)
                raise JobExists(job.id) from exc

    async def _give_back_flight(self, job: JobRecord) -> None:
        """Release the capture key this insert took, if it still holds it."""
        await self._mongo.col("flights").delete_one({"_id": job.capture_key, "job_id": job.id})

    async def _take_flight(self, job: JobRecord) -> None:
        """Own the capture key: the `flights` document whose `_id` is the key (unique by nature).

        The flight is written before the job, so a flight whose job is missing is normally a
        job being inserted right now: it is waited for briefly, and taken over only when it
        stays missing (an instance died between the two writes) or its job is final.
        """
        flights = self._mongo.col("flights")
        for _ in range(_FLIGHT_TRIES):
            try:
                await flights.insert_one({"_id": job.capture_key, "job_id": job.id,
                                          "at": time.time()})
                return
            except DuplicateKeyError:
                pass
            flight = await flights.find_one({"_id": job.capture_key})
            if flight is None:
                continue  # released in between: try again
            if flight["job_id"] == job.id:
                raise JobExists(job.id)
            held = await self._mongo.col("grabs").find_one({"_id": flight["job_id"]})
            if held is not None and JobState(held["state"]) in ACTIVE_STATES:
                raise CaptureKeyBusy(job.capture_key, _to_job(held))
            if held is None and time.time() - flight["at"] < _FLIGHT_INSERT_GRACE_S:
                await asyncio.sleep(0.05)
                continue
            taken = await flights.find_one_and_update(
                {"_id": job.capture_key, "job_id": flight["job_id"]},
                {"$set": {"job_id": job.id, "at": time.time()}},
            )
            if taken is not None:
                return
        raise StoreError(f"capture key {job.capture_key}: could not take it (kept changing)")

    async def get_job(self, job_id: str) -> JobRecord | None:
        async with self._mongo.guard():
            doc = await self._mongo.col("grabs").find_one({"_id": job_id})
        return None if doc is None else _to_job(doc)

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
        grabs = self._mongo.col("grabs")
        async with self._mongo.guard():
            doc = await grabs.find_one({"_id": job_id})
            if doc is None:
                raise JobNotFound(job_id)
            return await self._transition_doc(
                doc, to, note, fields, expect=expect, expect_owner=expect_owner,
                expect_lease_before=expect_lease_before, expect_claim=expect_claim)

    async def _transition_doc(
        self, doc: Doc, to: JobState, note: str | None, fields: dict[str, Any], *,
        expect: JobState | None, expect_owner: str | None = None,
        expect_lease_before: float | None = None, expect_claim: str | None = None,
    ) -> JobRecord:
        grabs = self._mongo.col("grabs")
        job_id = doc["_id"]
        job = _to_job(doc)
        if already_settled(job, to, expect_claim):
            return job
        values = plan_transition(
            job, to, expect=expect, note=note, fields=fields, now=time.time(),
            expect_owner=expect_owner, expect_lease_before=expect_lease_before,
            expect_claim=expect_claim,
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
        if to.is_final:  # the capture key is free for the next request
            await self._mongo.col("flights").delete_one(
                {"_id": job.capture_key, "job_id": job_id})
        return _to_job(after)

    # -- leases ---------------------------------------------------------------------------

    async def claim_next(
        self, owner: str, lanes: list[str], *, lease_s: float
    ) -> JobRecord | None:
        grabs = self._mongo.col("grabs")
        async with self._mongo.guard():
            for lane in lanes:
                # The oldest few candidates: the claim itself is the conditional
                # find_one_and_update in _transition_doc (state queued + rev); losing a race
                # to another instance moves on to the next candidate.
                cursor = (grabs.find({"state": JobState.QUEUED.value, "lane": lane})
                          .sort([("created_at", ASCENDING), ("_id", ASCENDING)])
                          .limit(_CLAIM_CANDIDATES))
                for doc in await cursor.to_list():
                    fields, note = claim(_to_job(doc), owner, lease_s=lease_s, now=time.time())
                    try:
                        return await self._transition_doc(
                            doc, JobState.RUNNING, note, fields, expect=JobState.QUEUED)
                    except StaleState:
                        continue
        return None

    async def renew_lease(
        self, job_id: str, owner: str, *, lease_s: float, claim: str | None = None
    ) -> bool:
        match: Doc = {"_id": job_id, "owner": owner,
                      "state": {"$in": list(LEASED_STATE_VALUES)}}
        if claim is not None:
            match["claim"] = claim
        async with self._mongo.guard():
            updated = await self._mongo.col("grabs").update_one(
                match, {"$set": {"lease_expires_at": lease_expiry(lease_s, now=time.time())}})
        return updated.matched_count == 1

    async def expired_leases(self, *, now: float) -> list[JobRecord]:
        cursor = self._mongo.col("grabs").find(
            {"state": {"$in": list(LEASED_STATE_VALUES)}, "lease_expires_at": {"$lt": now}}
        ).sort([("created_at", ASCENDING)])
        async with self._mongo.guard():
            docs = await cursor.to_list()
        return [_to_job(doc) for doc in docs]

    async def update_job(self, job_id: str, **fields: Any) -> JobRecord:
        values = {**validate_fields(job_id, fields), "updated_at": time.time()}
        async with self._mongo.guard():
            after = await self._mongo.col("grabs").find_one_and_update(
                {"_id": job_id}, {"$set": values, "$inc": {"rev": 1}},
                return_document=ReturnDocument.AFTER
            )
        if after is None:
            raise JobNotFound(job_id)
        return _to_job(after)

    async def find_active(self, capture_key: str) -> JobRecord | None:
        query = {"capture_key": capture_key, "state": {"$in": [s.value for s in ACTIVE_STATES]}}
        async with self._mongo.guard():
            doc = await self._mongo.col("grabs").find_one(
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
            self._mongo.col("grabs")
            .find(query)
            .sort([("created_at", direction), ("_id", direction)])
            .limit(self._recent_limit if limit is None else limit)
        )
        async with self._mongo.guard():
            docs = await cursor.to_list()
        return [_to_job(doc) for doc in docs]

    async def queued_jobs(self, *, limit: int, known: dict[str, int]) -> QueuedJobs:
        if limit <= 0:
            return QueuedJobs(revisions={}, records={})
        grabs = self._mongo.col("grabs")
        queued = {"state": JobState.QUEUED.value}
        async with self._mongo.guard():
            cursor = (grabs.find(queued, {"rev": 1})
                      .sort([("created_at", ASCENDING), ("_id", ASCENDING)]).limit(limit))
            revisions = {doc["_id"]: int(doc["rev"]) for doc in await cursor.to_list()}
            wanted = [i for i, rev in revisions.items() if known.get(i) != rev]
            docs = await grabs.find({**queued, "_id": {"$in": wanted}}).to_list() if wanted else []
        records: dict[str, JobRecord] = {}
        for doc in docs:
            records[doc["_id"]] = _to_job(doc)
            revisions[doc["_id"]] = int(doc["rev"])  # as read with the record
        for job_id in wanted:
            if job_id not in records:  # left the queue between the two reads
                del revisions[job_id]
        return QueuedJobs(revisions=revisions, records=records)

    async def count_by_state(self) -> dict[JobState, int]:
        counts = dict.fromkeys(JobState, 0)
        async with self._mongo.guard():
            cursor = await self._mongo.col("grabs").aggregate(
                [{"$group": {"_id": "$state", "n": {"$sum": 1}}}]
            )
            for row in await cursor.to_list():
                counts[JobState(row["_id"])] = int(row["n"])
        return counts
