"""SQLite backend: one file, WAL, safe for several oven processes sharing it.

Threading: every call runs on one dedicated worker thread that owns the connection
(`ThreadPoolExecutor(max_workers=1)`), not on `asyncio.to_thread`. sqlite3 connections belong
to the thread that made them; one owner thread keeps `check_same_thread` on as a guard,
serializes this process's statements without a lock, and never lends the default executor's
threads (shared with the rest of the process) to a call that may sit in `busy_timeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from oven.jobs import JobState
from oven.store._base import (
    ACTIVE_STATES,
    LEASED_STATES,
    CaptureKeyBusy,
    JobExists,
    JobNotFound,
    StaleState,
    StoreUnavailable,
    already_settled,
    new_claim_token,
    plan_transition,
    validate_fields,
)
from oven.store._records import JobRecord, QueuedJobs
from oven.store._sqlite_schema import (
    JOB_COLUMNS,
    SCHEMA,
    SCHEMA_VERSION,
    migrate,
    read_queued,
    to_job,
    to_row,
)
from oven.store._sqlite_side import SqliteSideTables

log = logging.getLogger(__name__)

T = TypeVar("T")

class SqliteStore(SqliteSideTables):
    """The Store protocol on a local SQLite file."""

    def __init__(self, path: Path, *, busy_timeout_s: float, recent_limit: int) -> None:
        self._path = path
        self._busy_timeout_s = busy_timeout_s
        self._recent_limit = recent_limit
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # touched only on the executor thread

    def __repr__(self) -> str:
        return f"SqliteStore({str(self._path)!r})"

    # -- plumbing -------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise StoreUnavailable(f"SQLite store {self._path} is not started (call start())")
        loop = asyncio.get_running_loop()
        # Blocking sqlite3 calls (and busy_timeout waits) stay off the event loop.
        return await loop.run_in_executor(self._executor, functools.partial(self._guard, fn, *args))

    def _guard(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except sqlite3.OperationalError as exc:
            hint = (
                f"another process held the write lock longer than {self._busy_timeout_s:g} s "
                "(store.timeout_s)"
                if "locked" in str(exc) or "busy" in str(exc)
                else "check that the file and its directory exist, are writable and have space"
            )
            raise StoreUnavailable(f"SQLite store {self._path}: {exc}; {hint}") from exc

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreUnavailable(f"SQLite store {self._path} is closed")
        return self._conn

    @contextlib.contextmanager
    def _write_tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._db
        # IMMEDIATE takes the write lock before the first read: a deferred transaction that
        # reads and then writes gets SQLITE_BUSY at once (no busy_timeout wait) when another
        # process wrote in between, and it would decide on a stale read.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="StoreSqlite")
        try:
            await self._call(self._open)
        except BaseException:
            self._executor.shutdown(wait=True)
            self._executor = None
            raise

    def _open(self) -> None:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create the directory for SQLite store {self._path}: {exc}; "
                "set store.sqlite_path or the data dir to a writable place"
            ) from exc
        # isolation_level=None: we issue BEGIN/COMMIT ourselves (sqlite3's implicit
        # transactions would begin deferred, see _write_tx).
        conn = sqlite3.connect(self._path, timeout=self._busy_timeout_s, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                log.warning("SQLite store %s: journal_mode is %s, not wal", self._path, mode)
            # FULL: a job acknowledged with 202 must survive power loss, not only a crash;
            # one fsync per commit is cheap next to a capture.
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            # One write transaction: two processes starting at once apply it in turn.
            try:
                conn.executescript(f"BEGIN IMMEDIATE;{SCHEMA}COMMIT;")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version < SCHEMA_VERSION:
                migrate(conn)
            elif version > SCHEMA_VERSION:
                raise StoreUnavailable(
                    f"SQLite store {self._path} has schema {version}, newer than this oven "
                    f"({SCHEMA_VERSION}); upgrade oven or point store.sqlite_path elsewhere"
                )
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        log.info("SQLite store open at %s (journal_mode=%s)", self._path, mode)

    async def close(self) -> None:
        if self._executor is None:
            return
        try:
            await self._call(self._close_conn)
        finally:
            self._executor.shutdown(wait=True)
            self._executor = None

    def _close_conn(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def ping(self) -> None:
        await self._call(self._ping)

    def _ping(self) -> None:
        self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if not self._path.exists():
            # The open connection keeps working on an unlinked file; everything written
            # from now on would vanish with it.
            raise StoreUnavailable(
                f"SQLite store {self._path} was removed while open; restart oven to recreate it"
            )

    # -- jobs -----------------------------------------------------------------------------

    async def insert_job(self, job: JobRecord) -> None:
        await self._call(self._insert_job, job)

    def _insert_job(self, job: JobRecord) -> None:
        row = to_row(job.model_dump(mode="json"))
        names = ", ".join(JOB_COLUMNS)
        marks = ", ".join(f":{k}" for k in JOB_COLUMNS)
        with self._write_tx() as conn:
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
        return await self._call(self._get_job, job_id)

    def _get_job(self, job_id: str) -> JobRecord | None:
        row = self._db.execute("SELECT * FROM grabs WHERE id = ?", (job_id,)).fetchone()
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
        return await self._call(self._transition, job_id, to, conditions, note, fields)

    def _transition(
        self,
        job_id: str,
        to: JobState,
        conditions: dict[str, Any],
        note: str | None,
        fields: dict[str, Any],
    ) -> JobRecord:
        with self._write_tx() as conn:
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
        return await self._call(self._claim_next, owner, lanes, lease_s)

    def _claim_next(self, owner: str, lanes: list[str], lease_s: float) -> JobRecord | None:
        with self._write_tx() as conn:  # the write lock makes select-then-update one step
            for lane in lanes:
                row = conn.execute(
                    "SELECT * FROM grabs WHERE state = ? AND lane = ? "
                    "ORDER BY created_at, id LIMIT 1", (JobState.QUEUED.value, lane)
                ).fetchone()
                if row is None:
                    continue
                job = to_job(row)
                now = time.time()
                fields = {"owner": owner, "lease_expires_at": now + lease_s,
                          "attempts": job.attempts + 1, "stage": "navigate",
                          "claim": new_claim_token()}
                return self._transition_row(
                    conn, job, row["rev"], JobState.RUNNING, {"expect": JobState.QUEUED},
                    f"claimed by {owner}", fields)
        return None

    async def renew_lease(
        self, job_id: str, owner: str, *, lease_s: float, claim: str | None = None
    ) -> bool:
        return await self._call(self._renew_lease, job_id, owner, lease_s, claim)

    def _renew_lease(self, job_id: str, owner: str, lease_s: float, claim: str | None) -> bool:
        cur = self._db.execute(
            "UPDATE grabs SET lease_expires_at = ? WHERE id = ? AND owner = ? "
            "AND state IN (?, ?) AND (? IS NULL OR claim = ?)",
            (time.time() + lease_s, job_id, owner, *LEASED_STATES, claim, claim),
        )
        return cur.rowcount == 1

    async def expired_leases(self, *, now: float) -> list[JobRecord]:
        return await self._call(self._expired_leases, now)

    def _expired_leases(self, now: float) -> list[JobRecord]:
        rows = self._db.execute(
            "SELECT * FROM grabs WHERE state IN (?, ?) AND lease_expires_at < ? "
            "ORDER BY created_at", (*LEASED_STATES, now),
        ).fetchall()
        return [to_job(row) for row in rows]

    async def update_job(self, job_id: str, **fields: Any) -> JobRecord:
        return await self._call(self._update_job, job_id, fields)

    def _update_job(self, job_id: str, fields: dict[str, Any]) -> JobRecord:
        values = {**validate_fields(job_id, fields), "updated_at": time.time()}
        sets = ", ".join(f"{k} = :{k}" for k in values)
        with self._write_tx() as conn:
            cur = conn.execute(
                f"UPDATE grabs SET {sets}, rev = rev + 1 WHERE id = :_id",
                {**to_row(values), "_id": job_id}
            )
            if cur.rowcount != 1:
                raise JobNotFound(job_id)
            row = conn.execute("SELECT * FROM grabs WHERE id = ?", (job_id,)).fetchone()
        return to_job(row)

    async def find_active(self, capture_key: str) -> JobRecord | None:
        return await self._call(self._find_active, capture_key)

    def _find_active(self, capture_key: str) -> JobRecord | None:
        states = sorted(s.value for s in ACTIVE_STATES)
        row = self._db.execute(
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
        return await self._call(
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
        rows = self._db.execute(
            f"SELECT * FROM grabs {where} ORDER BY created_at {order}, id {order} LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [to_job(row) for row in rows]

    async def queued_jobs(self, *, limit: int, known: dict[str, int]) -> QueuedJobs:
        return await self._call(lambda: read_queued(self._db, limit, dict(known)))

    async def count_by_state(self) -> dict[JobState, int]:
        return await self._call(self._count_by_state)

    def _count_by_state(self) -> dict[JobState, int]:
        counts = dict.fromkeys(JobState, 0)
        for state, n in self._db.execute("SELECT state, count(*) FROM grabs GROUP BY state"):
            counts[JobState(state)] = n
        return counts
