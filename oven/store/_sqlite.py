"""SQLite backend: one file, WAL, safe for several oven processes sharing it (the file and
its thread: oven/store/_sqlite_file.py)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from oven.jobs import JobState
from oven.store._base import ACTIVE_STATES, SideTables, plan_transition, validate_fields
from oven.store._errors import (
    CaptureCached,
    CaptureKeyBusy,
    JobExists,
    JobNotFound,
    StaleState,
)
from oven.store._leases import LEASED_STATE_VALUES, already_settled, claim, lease_expiry
from oven.store._records import JobRecord, QueuedJobs
from oven.store._sqlite_file import SqliteFile
from oven.store._sqlite_schema import (
    JOB_COLUMNS,
    read_queued,
    to_job,
    to_row,
)
from oven.store._sqlite_side import (
    SqliteCache,
    SqliteDocs,
    SqliteFreezes,
    SqliteInstances,
    live_result,
)

_LEASED_MARKS = ", ".join("?" * len(LEASED_STATE_VALUES))


class SqliteStore(SideTables):
    """The Store protocol on a local SQLite file: the jobs here, the result cache, frozen
    pieces and documents in the side tables it holds (forwarded by SideTables)."""

    def __init__(self, path: Path, *, busy_timeout_s: float, recent_limit: int) -> None:
        self._file = SqliteFile(path, busy_timeout_s=busy_timeout_s)
        self._recent_limit = recent_limit
        super().__init__(SqliteCache(self._file), SqliteFreezes(self._file),
                         SqliteDocs(self._file), SqliteInstances(self._file))

    def __repr__(self) -> str:
        return f"SqliteStore({str(self._file.path)!r})"

    async def start(self) -> None:
        await self._file.start()

    async def close(self) -> None:
        await self._file.close()

    async def ping(self) -> None:
        await self._file.ping()

    # -- jobs -----------------------------------------------------------------------------

    async def insert_job(self, job: JobRecord) -> None:
        await self._file.call(self._insert_job, job)

    def _insert_job(self, job: JobRecord) -> None:
        row = to_row(job.model_dump(mode="json"))
        names = ", ".join(JOB_COLUMNS)
        marks = ", ".join(f":{k}" for k in JOB_COLUMNS)
        with self._file.write_tx() as conn:
            if conn.execute("SELECT 1 FROM grabs WHERE id = ?", (job.id,)).fetchone():
                raise JobExists(job.id)
            # The flight row is the capture key's single owner across every process on the
            # file; a row left by a job that is final (or gone) is taken over.
            held = conn.execute(
                "SELECT g.* FROM flights f JOIN grabs g ON g.id = f.job_id "
                "WHERE f.capture_key = ?", (job.capture_key,)
            ).fetchone()
            if held is not None and JobState(held["state"]) in ACTIVE_STATES:
                raise CaptureKeyBusy(job.capture_key, to_job(held))
            cached = live_result(conn, job.capture_key)
            if cached is not None:  # its holder completed after the caller looked
                raise CaptureCached(job.capture_key, cached)
            try:
                conn.execute(f"INSERT INTO grabs ({names}) VALUES ({marks})", row)
            except sqlite3.IntegrityError as exc:
                raise JobExists(job.id) from exc
            conn.execute(
                "INSERT INTO flights (capture_key, job_id, at) VALUES (?, ?, ?) "
                "ON CONFLICT (capture_key) DO UPDATE SET "
                "job_id = excluded.job_id, at = excluded.at",
                (job.capture_key, job.id, time.time()),
            )

    async def get_job(self, job_id: str) -> JobRecord | None:
        return await self._file.call(self._get_job, job_id)

    def _get_job(self, job_id: str) -> JobRecord | None:
        row = self._file.db.execute("SELECT * FROM grabs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else to_job(row)

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
        conditions = {"expect": expect, "expect_owner": expect_owner,
                      "expect_lease_before": expect_lease_before, "expect_claim": expect_claim}
        return await self._file.call(self._transition, job_id, to, conditions, note, fields)

    def _transition(
        self,
        job_id: str,
        to: JobState,
        conditions: dict[str, Any],
        note: str | None,
        fields: dict[str, Any],
    ) -> JobRecord:
        with self._file.write_tx() as conn:
            row = conn.execute("SELECT * FROM grabs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFound(job_id)
            return self._transition_row(conn, to_job(row), row["rev"], to, conditions, note,
                                        fields)

    def _transition_row(
        self,
        conn: sqlite3.Connection,
        job: JobRecord,
        rev: int,
        to: JobState,
        conditions: dict[str, Any],
        note: str | None,
        fields: dict[str, Any],
    ) -> JobRecord:
        """Inside a write transaction: apply one planned transition to a row read in it."""
        job_id, expect = job.id, conditions.get("expect")
        if already_settled(job, to, conditions.get("expect_claim")):
            return job
        values = plan_transition(
            job, to, note=note, fields=fields, now=time.time(), **conditions
        )
        sets = ", ".join(f"{k} = :{k}" for k in values)
        # Conditional even under the write lock: it is what makes the rule visible here
        # and keeps it true if the locking above ever changes.
        cur = conn.execute(
            f"UPDATE grabs SET {sets}, rev = rev + 1 "
            "WHERE id = :_id AND state = :_state AND rev = :_rev",
            {**to_row(values), "_id": job_id, "_state": job.state.value, "_rev": rev},
        )
        if cur.rowcount != 1:
            raise StaleState(job_id, expect or job.state, None)
        if to.is_final:  # the capture key is free for the next request
            conn.execute("DELETE FROM flights WHERE capture_key = ? AND job_id = ?",
                         (job.capture_key, job_id))
        return JobRecord.model_validate({**job.model_dump(mode="json"), **values})

    # -- leases ---------------------------------------------------------------------------

    async def claim_next(
        self, owner: str, lanes: list[str], *, lease_s: float
    ) -> JobRecord | None:
        return await self._file.call(self._claim_next, owner, lanes, lease_s)

    def _claim_next(self, owner: str, lanes: list[str], lease_s: float) -> JobRecord | None:
        with self._file.write_tx() as conn:  # the write lock makes select-then-update one step
            for lane in lanes:
                row = conn.execute(
                    "SELECT * FROM grabs WHERE state = ? AND lane = ? "
                    "ORDER BY created_at, id LIMIT 1", (JobState.QUEUED.value, lane)
                ).fetchone()
                if row is None:
                    continue
                job = to_job(row)
                fields, note = claim(job, owner, lease_s=lease_s, now=time.time())
                return self._transition_row(
                    conn, job, row["rev"], JobState.RUNNING, {"expect": JobState.QUEUED},
                    note, fields)
        return None

    async def renew_lease(
        self, job_id: str, owner: str, *, lease_s: float, claim: str | None = None
    ) -> bool:
        return await self._file.call(self._renew_lease, job_id, owner, lease_s, claim)

    def _renew_lease(self, job_id: str, owner: str, lease_s: float, claim: str | None) -> bool:
        cur = self._file.db.execute(
            "UPDATE grabs SET lease_expires_at = ? WHERE id = ? AND owner = ? "
            f"AND state IN ({_LEASED_MARKS}) AND (? IS NULL OR claim = ?)",
            (lease_expiry(lease_s, now=time.time()), job_id, owner, *LEASED_STATE_VALUES,
             claim, claim),
        )
        return cur.rowcount == 1

    async def expired_leases(self, *, now: float) -> list[JobRecord]:
        return await self._file.call(self._expired_leases, now)

    def _expired_leases(self, now: float) -> list[JobRecord]:
        rows = self._file.db.execute(
            f"SELECT * FROM grabs WHERE state IN ({_LEASED_MARKS}) AND lease_expires_at < ? "
            "ORDER BY created_at", (*LEASED_STATE_VALUES, now),
        ).fetchall()
        return [to_job(row) for row in rows]

    async def update_job(self, job_id: str, **fields: Any) -> JobRecord:
        return await self._file.call(self._update_job, job_id, fields)

    def _update_job(self, job_id: str, fields: dict[str, Any]) -> JobRecord:
        values = {**validate_fields(job_id, fields), "updated_at": time.time()}
        sets = ", ".join(f"{k} = :{k}" for k in values)
        with self._file.write_tx() as conn:
            cur = conn.execute(
                f"UPDATE grabs SET {sets}, rev = rev + 1 WHERE id = :_id",
                {**to_row(values), "_id": job_id}
            )
            if cur.rowcount != 1:
                raise JobNotFound(job_id)
            row = conn.execute("SELECT * FROM grabs WHERE id = ?", (job_id,)).fetchone()
        return to_job(row)

    async def find_active(self, capture_key: str) -> JobRecord | None:
        return await self._file.call(self._find_active, capture_key)

    def _find_active(self, capture_key: str) -> JobRecord | None:
        states = sorted(s.value for s in ACTIVE_STATES)
        row = self._file.db.execute(
            "SELECT * FROM grabs WHERE capture_key = ? AND state IN (?, ?, ?) "
            "ORDER BY created_at, id LIMIT 1",
            (capture_key, *states),
        ).fetchone()
        return None if row is None else to_job(row)

    async def list_jobs(
        self,
        states: set[JobState] | None = None,
        *,
        limit: int | None = None,
        newest_first: bool = True,
    ) -> list[JobRecord]:
        return await self._file.call(
            self._list_jobs, states, self._recent_limit if limit is None else limit, newest_first
        )

    def _list_jobs(
        self, states: set[JobState] | None, limit: int, newest_first: bool
    ) -> list[JobRecord]:
        if states is not None and not states:
            return []
        order = "DESC" if newest_first else "ASC"
        where = ""
        args: tuple[str, ...] = ()
        if states is not None:
            where = f"WHERE state IN ({', '.join('?' * len(states))})"
            args = tuple(s.value for s in states)
        rows = self._file.db.execute(
            f"SELECT * FROM grabs {where} ORDER BY created_at {order}, id {order} LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [to_job(row) for row in rows]

    async def queued_jobs(self, *, limit: int, known: dict[str, int]) -> QueuedJobs:
        return await self._file.call(lambda: read_queued(self._file.db, limit, dict(known)))

    async def count_by_state(self) -> dict[JobState, int]:
        return await self._file.call(self._count_by_state)

    def _count_by_state(self) -> dict[JobState, int]:
        counts = dict.fromkeys(JobState, 0)
        for state, n in self._file.db.execute("SELECT state, count(*) FROM grabs GROUP BY state"):
            counts[JobState(state)] = n
        return counts
