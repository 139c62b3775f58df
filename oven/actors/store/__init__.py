"""StoreActor: the metadata store (SQLite or MongoDB) behind one thread, and its client."""

from oven.actors.store._actor import (
    StoreActor,
    StoreClient,
)

__all__ = [
    "StoreActor",
    "StoreClient",
]
