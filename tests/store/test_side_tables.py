"""The side tables' operations (result cache, frozen pieces, documents) are forwarded to a
backend's tables in one place both backends share, so each backend's module keeps to jobs."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from oven.store import StoreSettings, make_store, store_operations

SIDE_OPERATIONS = frozenset({
    "cache_get", "cache_put", "cache_delete",
    "record_piece_failure", "record_piece_success",
    "freeze", "frozen_until", "list_frozen", "unfreeze",
    "put_doc", "get_doc", "list_docs",
})


def defining_class(cls: type, name: str) -> type:
    return next(klass for klass in cls.__mro__ if name in vars(klass))


def test_both_backends_take_each_side_table_operation_from_one_shared_class(
    tmp_path: Path,
) -> None:
    assert store_operations() >= SIDE_OPERATIONS
    # Built, never started: nothing is opened or connected.
    backends = [
        type(make_store(StoreSettings(backend="sqlite"), tmp_path)),
        type(make_store(StoreSettings(backend="mongodb",
                                      mongodb_uri=SecretStr("mongodb://127.0.0.1:9")), tmp_path)),
    ]
    for name in sorted(SIDE_OPERATIONS):
        owners = {defining_class(backend, name) for backend in backends}
        assert len(owners) == 1, f"{name} is written in {sorted(o.__name__ for o in owners)}"
        assert owners.isdisjoint(backends), f"{name} is written in a backend"
