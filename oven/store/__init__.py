"""Metadata + durable job queue: jobs and their history, the result cache, frozen pieces,
instance heartbeats.

Two backends behind one async `Store` protocol: SQLite (default, one file) and MongoDB.
"""

from oven.store._base import Store, StoreOperations, store_operations
from oven.store._errors import (
    CaptureCached,
    CaptureKeyBusy,
    JobExists,
    JobNotFound,
    StaleState,
    StoreError,
    StoreUnavailable,
)
from oven.store._factory import make_store
from oven.store._records import (
    FrozenPiece,
    HistoryEntry,
    InstanceRecord,
    JobRecord,
    QueuedJobs,
)
from oven.store._settings import StoreSettings

__all__ = [
    "CaptureCached",
    "CaptureKeyBusy",
    "FrozenPiece",
    "HistoryEntry",
    "InstanceRecord",
    "JobExists",
    "JobNotFound",
    "JobRecord",
    "QueuedJobs",
    "StaleState",
    "Store",
    "StoreError",
    "StoreOperations",
    "StoreSettings",
    "StoreUnavailable",
    "make_store",
    "store_operations",
]
