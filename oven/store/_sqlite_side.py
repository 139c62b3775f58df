"""The SQLite store's side tables: result cache, frozen pieces and documents.

A mixin of SqliteStore (oven/store/_sqlite.py), which provides `_call`, `_db` and `_write_tx`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from oven.store._base import check_doc_kind
from oven.store._records import FrozenPiece

T = TypeVar("T")


class SqliteSideTables:
    # Provided by SqliteStore: the worker-thread call, the connection and a write transaction.
    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError

    @property
    def _db(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _write_tx(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    # -- result cache ---------------------------------------------------------------------

    async def cache_get(self, key: str) -> dict[str, Any] | None:
        return await self._call(self._cache_get, key)

    def _cache_get(self, key: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT result FROM cache WHERE key = ? AND expires_at > ?", (key, time.time())
        ).fetchone()
        return None if row is None else dict(json.loads(row["result"]))

    async def cache_put(self, key: str, result: dict[str, Any], ttl_s: float) -> None:
        await self._call(self._cache_put, key, json.dumps(result), ttl_s)

    def _cache_put(self, key: str, result: str, ttl_s: float) -> None:
        now = time.time()
        with self._write_tx() as conn:
            conn.execute(
                "INSERT INTO cache (key, result, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET "
                "result = excluded.result, expires_at = excluded.expires_at",
                (key, result, now + ttl_s),
            )
            # Expired rows are never read; drop them here so the table stays small.
            conn.execute("DELETE FROM cache WHERE expires_at <= ?", (now,))

    async def cache_delete(self, key: str) -> bool:
        return await self._call(self._cache_delete, key)

    def _cache_delete(self, key: str) -> bool:
        return self._db.execute("DELETE FROM cache WHERE key = ?", (key,)).rowcount > 0

    # -- frozen pieces --------------------------------------------------------------------

    async def record_piece_failure(self, piece: str, reason: str) -> int:
        return await self._call(self._record_piece_failure, piece, reason)

    def _record_piece_failure(self, piece: str, reason: str) -> int:
        with self._write_tx() as conn:
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

    async def record_piece_success(self, piece: str) -> None:
        await self._call(self._record_piece_success, piece)

    def _record_piece_success(self, piece: str) -> None:
        self._db.execute("UPDATE frozen SET failures = 0 WHERE piece = ?", (piece,))

    async def freeze(self, piece: str, until: float, reason: str) -> None:
        await self._call(self._freeze, piece, until, reason)

    def _freeze(self, piece: str, until: float, reason: str) -> None:
        self._db.execute(
            "INSERT INTO frozen (piece, frozen_until, reason, frozen_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (piece) DO UPDATE SET frozen_until = excluded.frozen_until, "
            "reason = excluded.reason, frozen_at = excluded.frozen_at",
            (piece, until, reason, time.time()),
        )

    async def frozen_until(self, piece: str) -> float | None:
        return await self._call(self._frozen_until, piece)

    def _frozen_until(self, piece: str) -> float | None:
        row = self._db.execute(
            "SELECT frozen_until FROM frozen WHERE piece = ? AND frozen_until > ?",
            (piece, time.time()),
        ).fetchone()
        return None if row is None else float(row[0])

    async def list_frozen(self) -> list[FrozenPiece]:
        return await self._call(self._list_frozen)

    def _list_frozen(self) -> list[FrozenPiece]:
        rows = self._db.execute(
            "SELECT piece, frozen_until, reason, frozen_at, failures FROM frozen "
            "WHERE frozen_until > ? ORDER BY frozen_until, piece",
            (time.time(),),
        ).fetchall()
        return [FrozenPiece.model_validate(dict(row)) for row in rows]

    async def unfreeze(self, piece: str) -> bool:
        return await self._call(self._unfreeze, piece)

    def _unfreeze(self, piece: str) -> bool:
        """Clear the freeze and the failure count (also one left by an expired freeze);
        True when the piece was frozen."""
        with self._write_tx() as conn:
            frozen = conn.execute(
                "SELECT 1 FROM frozen WHERE piece = ? AND frozen_until > ?", (piece, time.time())
            ).fetchone()
            conn.execute(
                "UPDATE frozen SET frozen_until = NULL, reason = NULL, frozen_at = NULL, "
                "failures = 0 WHERE piece = ?", (piece,))
        return frozen is not None

    # -- documents (bakes, webhook deliveries, ...) ----------------------------------------

    async def put_doc(self, kind: str, doc_id: str, body: dict[str, Any]) -> None:
        check_doc_kind(kind)
        await self._call(self._put_doc, kind, doc_id, json.dumps(body))

    def _put_doc(self, kind: str, doc_id: str, body: str) -> None:
        now = time.time()
        self._db.execute(
            "INSERT INTO docs (kind, id, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body, "
            "updated_at = excluded.updated_at",
            (kind, doc_id, body, now, now),
        )

    async def get_doc(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        check_doc_kind(kind)
        return await self._call(self._get_doc, kind, doc_id)

    def _get_doc(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT body FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)
        ).fetchone()
        return None if row is None else dict(json.loads(row["body"]))

    async def list_docs(self, kind: str, *, limit: int = 100) -> list[dict[str, Any]]:
        check_doc_kind(kind)
        return await self._call(self._list_docs, kind, limit)

    def _list_docs(self, kind: str, limit: int) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT body FROM docs WHERE kind = ? ORDER BY created_at DESC, id DESC LIMIT ?",
            (kind, limit),
        ).fetchall()
        return [dict(json.loads(row["body"])) for row in rows]
