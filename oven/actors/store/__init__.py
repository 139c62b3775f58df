"""StoreActor: the metadata store (SQLite or MongoDB) behind one thread, its message and its
client (every Store operation, typed by the protocol in oven.store)."""

from oven.actors.store._actor import (
    StoreActor,
    StoreCall,
    StoreClient,
)

__all__ = [
    "StoreActor",
    "StoreCall",
    "StoreClient",
]
