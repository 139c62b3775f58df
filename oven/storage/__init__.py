"""Result storage: a local directory or an S3 bucket behind one async `Storage` protocol.

Plain async classes; the Uploader actor runs them on its own event loop and owns retries.
"""

from oven.storage._base import (
    Storage,
    StorageError,
    StorageUnavailable,
    StoredObject,
    validate_key,
)
from oven.storage._factory import make_storage
from oven.storage._local import LocalStorage
from oven.storage._settings import S3Settings, StorageSettings

__all__ = [
    "LocalStorage",
    "S3Settings",
    "S3Storage",
    "Storage",
    "StorageError",
    "StorageSettings",
    "StorageUnavailable",
    "StoredObject",
    "make_storage",
    "validate_key",
]


def __getattr__(name: str) -> object:
    # S3Storage is loaded on first use: aioboto3 and botocore cost ~35 MB per process.
    if name == "S3Storage":
        from oven.storage._s3 import S3Storage

        return S3Storage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
