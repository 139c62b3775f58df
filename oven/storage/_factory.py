"""Pick the backend the settings name."""

from __future__ import annotations

from pathlib import Path

from oven.storage._base import Storage
from oven.storage._local import LocalStorage
from oven.storage._settings import StorageSettings


def make_storage(settings: StorageSettings, data_dir: Path) -> Storage:
    """Build (not start) the configured backend; a relative `local_dir` is under `data_dir`."""
    if settings.backend == "s3":
        # Imported here: aioboto3 and botocore add ~35 MB to a process that stores locally.
        from oven.storage._s3 import S3Storage

        return S3Storage(settings.s3)
    root = settings.local_dir if settings.local_dir.is_absolute() else data_dir / settings.local_dir
    return LocalStorage(root)
