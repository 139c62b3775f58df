"""Pick and build the configured backend."""

from __future__ import annotations

from pathlib import Path

from oven.store._base import Store
from oven.store._settings import StoreSettings
from oven.store._sqlite import SqliteStore


def make_store(settings: StoreSettings, data_dir: Path) -> Store:
    """The backend `settings` names; a relative `sqlite_path` is taken under `data_dir`.

    Nothing is opened yet: the caller awaits `start()` on the loop that will use the store.
    """
    if settings.backend == "mongodb":
        # Imported here: pymongo adds ~26 MB to a process that uses SQLite.
        from oven.store._mongo import MongoStore

        return MongoStore(
            settings.mongodb_uri.get_secret_value(),
            settings.mongodb_database,
            timeout_s=settings.timeout_s,
            recent_limit=settings.recent_limit,
        )
    path = data_dir / settings.sqlite_path  # an absolute sqlite_path replaces data_dir
    return SqliteStore(path, busy_timeout_s=settings.timeout_s, recent_limit=settings.recent_limit)
