"""The MongoDB database under the store: the client, its timeouts, and what an unreachable or
refusing server turns into (StoreUnavailable)."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConfigurationError, ConnectionFailure, OperationFailure, PyMongoError

from oven.store._errors import StoreUnavailable

log = logging.getLogger(__name__)

Doc = dict[str, Any]

# Codes MongoDB answers when credentials or roles are wrong: a config problem, not a bug.
_AUTH_CODES = frozenset({13, 18})


def redact_uri(uri: str) -> str:
    """The URI without its user:password part, fit for logs and error messages."""
    return re.sub(r"//[^@/]*@", "//***@", uri)


class MongoDatabase:
    """One database on one client; the jobs collection and the side collections
    (oven/store/_mongo_side.py) each hold it."""

    def __init__(self, uri: str, database: str, *, timeout_s: float) -> None:
        self._uri = uri
        self.where = f"MongoDB at {redact_uri(uri)} (database {database!r})"
        self._database = database
        self._timeout_ms = int(timeout_s * 1000)
        self._client: AsyncMongoClient[Doc] | None = None
        self._db: AsyncDatabase[Doc] | None = None

    @property
    def label(self) -> str:
        """The URI (without credentials) and database, as a repr shows them."""
        return f"{redact_uri(self._uri)!r}, {self._database!r}"

    def __repr__(self) -> str:
        return f"MongoDatabase({self.label})"

    @contextlib.asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """Turn "cannot reach or use the server" into StoreUnavailable; let bugs through."""
        try:
            yield
        except ConnectionFailure as exc:  # includes server selection and network timeouts
            raise StoreUnavailable(
                f"{self.where} not reachable within {self._timeout_ms / 1000:g} s: {exc}; "
                "check that the server runs and store.mongodb_uri / store.timeout_s"
            ) from exc
        except OperationFailure as exc:
            if exc.code in _AUTH_CODES:
                raise StoreUnavailable(
                    f"{self.where} refused access: {exc}; check the credentials in "
                    "store.mongodb_uri and the user's roles on the database"
                ) from exc
            raise
        except PyMongoError as exc:
            if exc.timeout:  # e.g. the operation ran past timeoutMS on a slow server
                raise StoreUnavailable(f"{self.where} timed out: {exc}") from exc
            raise

    def col(self, name: str) -> AsyncCollection[Doc]:
        if self._db is None:
            raise StoreUnavailable(f"{self.where}: store is not started (call start())")
        return self._db[name]

    @property
    def started(self) -> bool:
        return self._client is not None

    async def start(self) -> None:
        """Connect and ping; closed again if the server does not answer."""
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
            raise StoreUnavailable(f"{self.where}: bad store.mongodb_uri: {exc}") from exc
        self._client, self._db = client, client[self._database]
        try:
            await self.ping()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        client, self._client, self._db = self._client, None, None
        if client is not None:
            await client.close()

    async def ping(self) -> None:
        if self._client is None:
            raise StoreUnavailable(f"{self.where}: store is not started (call start())")
        async with self.guard():
            await self._client.admin.command("ping")
