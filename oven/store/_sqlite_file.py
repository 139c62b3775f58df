"""The SQLite file under the store: its connection, the one thread that uses it, write
transactions, and opening (schema, migration) and closing it.

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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from oven.store._errors import StoreUnavailable
from oven.store._sqlite_schema import SCHEMA, SCHEMA_VERSION, migrate

log = logging.getLogger(__name__)

T = TypeVar("T")


class SqliteFile:
    """One SQLite file and the one thread that uses its connection; the jobs table and the
    side tables (oven/store/_sqlite_side.py) each hold it."""

    def __init__(self, path: Path, *, busy_timeout_s: float) -> None:
        self.path = path
        self._busy_timeout_s = busy_timeout_s
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # touched only on the executor thread

    def __repr__(self) -> str:
        return f"SqliteFile({str(self.path)!r})"

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise StoreUnavailable(f"SQLite store {self.path} is not started (call start())")
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
            raise StoreUnavailable(f"SQLite store {self.path}: {exc}; {hint}") from exc

    @property
    def db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreUnavailable(f"SQLite store {self.path} is closed")
        return self._conn

    @contextlib.contextmanager
    def write_tx(self) -> Iterator[sqlite3.Connection]:
        conn = self.db
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
            await self.call(self._open)
        except BaseException:
            self._executor.shutdown(wait=True)
            self._executor = None
            raise

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create the directory for SQLite store {self.path}: {exc}; "
                "set store.sqlite_path or the data dir to a writable place"
            ) from exc
        # isolation_level=None: we issue BEGIN/COMMIT ourselves (sqlite3's implicit
        # transactions would begin deferred, see write_tx).
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                log.warning("SQLite store %s: journal_mode is %s, not wal", self.path, mode)
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
                    f"SQLite store {self.path} has schema {version}, newer than this oven "
                    f"({SCHEMA_VERSION}); upgrade oven or point store.sqlite_path elsewhere"
                )
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        log.info("SQLite store open at %s (journal_mode=%s)", self.path, mode)

    async def close(self) -> None:
        if self._executor is None:
            return
        try:
            await self.call(self._close_conn)
        finally:
            self._executor.shutdown(wait=True)
            self._executor = None

    def _close_conn(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def ping(self) -> None:
        await self.call(self._ping)

    def _ping(self) -> None:
        self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if not self.path.exists():
            # The open connection keeps working on an unlinked file; everything written
            # from now on would vanish with it.
            raise StoreUnavailable(
                f"SQLite store {self.path} was removed while open; restart oven to recreate it"
            )
