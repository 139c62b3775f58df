"""The SQLite store's side tables: result cache, frozen pieces, documents and instances.

Each is an object SqliteStore (oven/store/_sqlite.py) holds, on the store's one SqliteFile.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from oven.store._base import check_doc_kind
from oven.store._records import FrozenPiece, InstanceRecord
from oven.store._sqlite_file import SqliteFile


def live_result(conn: sqlite3.Connection, key: str) -> dict[str, Any] | None:
    """The key's cached result unless it has expired (also read inside an insert's
    transaction, which must not admit a key that was just captured)."""
    row = conn.execute(
        "SELECT result FROM cache WHERE key = ? AND expires_at > ?", (key, time.time())
    ).fetchone()
    return None if row is None else dict(json.loads(row["result"]))


class SqliteCache:
    """Finished results by capture key, each until its expiry."""

    def __init__(self, file: SqliteFile) -> None:
        self._file = file

    async def get(self, key: str) -> dict[str, Any] | None:
        return await self._file.call(self._get, key)

    def _get(self, key: str) -> dict[str, Any] | None:
        return live_result(self._file.db, key)

    async def put(self, key: str, result: dict[str, Any], ttl_s: float) -> None:
        await self._file.call(self._put, key, json.dumps(result), ttl_s)

    def _put(self, key: str, result: str, ttl_s: float) -> None:
        now = time.time()
        with self._file.write_tx() as conn:
            conn.execute(
                "INSERT INTO cache (key, result, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET "
                "result = excluded.result, expires_at = excluded.expires_at",
                (key, result, now + ttl_s),
            )
            # Expired rows are never read; drop them here so the table stays small.
            conn.execute("DELETE FROM cache WHERE expires_at <= ?", (now,))

    async def delete(self, key: str) -> bool:
        return await self._file.call(self._delete, key)

    def _delete(self, key: str) -> bool:
        return self._file.db.execute("DELETE FROM cache WHERE key = ?", (key,)).rowcount > 0



class SqliteFreezes:
    """Consecutive failures per piece, and the pieces frozen for a while after too many."""

    def __init__(self, file: SqliteFile) -> None:
        self._file = file

    async def record_failure(self, piece: str, reason: str) -> int:
        return await self._file.call(self._record_failure, piece, reason)

    def _record_failure(self, piece: str, reason: str) -> int:
        with self._file.write_tx() as conn:
            # A freeze that has run out starts the count afresh: one more failure after it
            # must not freeze the piece again at once. (SET expressions read the old row.)
            row = conn.execute(
                "INSERT INTO frozen (piece, failures, last_reason, last_failure_at) "
                "VALUES (?, 1, ?, ?) ON CONFLICT (piece) DO UPDATE SET "
                "failures = CASE WHEN frozen_until <= excluded.last_failure_at THEN 1 "
                "ELSE failures + 1 END, "
                "frozen_until = CASE WHEN frozen_until <= excluded.last_failure_at THEN NULL "
                "ELSE frozen_until END, "
                "last_reason = excluded.last_reason, "
                "last_failure_at = excluded.last_failure_at RETURNING failures",
                (piece, reason, time.time()),
            ).fetchone()
        return int(row[0])

    async def record_success(self, piece: str) -> None:
        await self._file.call(self._record_success, piece)

    def _record_success(self, piece: str) -> None:
        self._file.db.execute("UPDATE frozen SET failures = 0 WHERE piece = ?", (piece,))

    async def freeze(self, piece: str, until: float, reason: str) -> None:
        await self._file.call(self._freeze, piece, until, reason)

    def _freeze(self, piece: str, until: float, reason: str) -> None:
        self._file.db.execute(
            "INSERT INTO frozen (piece, frozen_until, reason, frozen_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (piece) DO UPDATE SET frozen_until = excluded.frozen_until, "
            "reason = excluded.reason, frozen_at = excluded.frozen_at",
            (piece, until, reason, time.time()),
        )

    async def frozen_until(self, piece: str) -> float | None:
        return await self._file.call(self._frozen_until, piece)

    def _frozen_until(self, piece: str) -> float | None:
        row = self._file.db.execute(
            "SELECT frozen_until FROM frozen WHERE piece = ? AND frozen_until > ?",
            (piece, time.time()),
        ).fetchone()
        return None if row is None else float(row[0])

    async def list_frozen(self) -> list[FrozenPiece]:
        return await self._file.call(self._list_frozen)

    def _list_frozen(self) -> list[FrozenPiece]:
        rows = self._file.db.execute(
            "SELECT piece, frozen_until, reason, frozen_at, failures FROM frozen "
            "WHERE frozen_until > ? ORDER BY frozen_until, piece",
            (time.time(),),
        ).fetchall()
        return [FrozenPiece.model_validate(dict(row)) for row in rows]

    async def unfreeze(self, piece: str) -> bool:
        return await self._file.call(self._unfreeze, piece)

    def _unfreeze(self, piece: str) -> bool:
        """Clear the freeze and the failure count (also one left by an expired freeze);
        True when the piece was frozen."""
        with self._file.write_tx() as conn:
            frozen = conn.execute(
                "SELECT 1 FROM frozen WHERE piece = ? AND frozen_until > ?", (piece, time.time())
            ).fetchone()
            conn.execute(
                "UPDATE frozen SET frozen_until = NULL, reason = NULL, frozen_at = NULL, "
                "failures = 0 WHERE piece = ?", (piece,))
        return frozen is not None



class SqliteDocs:
    """Small JSON documents other rooms keep (bakes, webhook deliveries), by (kind, id)."""

    def __init__(self, file: SqliteFile) -> None:
        self._file = file

    async def put(self, kind: str, doc_id: str, body: dict[str, Any]) -> None:
        check_doc_kind(kind)
        await self._file.call(self._put, kind, doc_id, json.dumps(body))

    def _put(self, kind: str, doc_id: str, body: str) -> None:
        now = time.time()
        self._file.db.execute(
            "INSERT INTO docs (kind, id, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body, "
            "updated_at = excluded.updated_at",
            (kind, doc_id, body, now, now),
        )

    async def get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        check_doc_kind(kind)
        return await self._file.call(self._get, kind, doc_id)

    def _get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        row = self._file.db.execute(
            "SELECT body FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)
        ).fetchone()
        return None if row is None else dict(json.loads(row["body"]))

    async def newest(self, kind: str, *, limit: int = 100) -> list[dict[str, Any]]:
        check_doc_kind(kind)
        return await self._file.call(self._newest, kind, limit)

    def _newest(self, kind: str, limit: int) -> list[dict[str, Any]]:
        rows = self._file.db.execute(
            "SELECT body FROM docs WHERE kind = ? ORDER BY created_at DESC, id DESC LIMIT ?",
            (kind, limit),
        ).fetchall()
        return [dict(json.loads(row["body"])) for row in rows]


class SqliteInstances:
    """Each instance's last heartbeat (its record as JSON), by instance id."""

    def __init__(self, file: SqliteFile) -> None:
        self._file = file

    async def beat(self, instance: InstanceRecord) -> None:
        await self._file.call(self._beat, instance.id, instance.model_dump_json(),
                              instance.heartbeat_at)

    def _beat(self, instance_id: str, body: str, at: float) -> None:
        self._file.db.execute(
            "INSERT INTO instances (id, body, heartbeat_at) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET body = excluded.body, "
            "heartbeat_at = excluded.heartbeat_at", (instance_id, body, at))

    async def seen_since(self, since: float) -> list[InstanceRecord]:
        return await self._file.call(self._seen_since, since)

    def _seen_since(self, since: float) -> list[InstanceRecord]:
        rows = self._file.db.execute(
            "SELECT body FROM instances WHERE heartbeat_at >= ? ORDER BY id", (since,))
        return [InstanceRecord.model_validate_json(row["body"]) for row in rows]

    async def forget(self, silent_before: float) -> int:
        return await self._file.call(self._forget, silent_before)

    def _forget(self, silent_before: float) -> int:
        cursor = self._file.db.execute(
            "DELETE FROM instances WHERE heartbeat_at < ?", (silent_before,))
        return int(cursor.rowcount)
