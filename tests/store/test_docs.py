"""Documents other rooms keep in the store (bakes, webhook deliveries), on both backends."""

from __future__ import annotations

import pytest

from oven.store import Store


async def test_a_document_is_upserted_and_listed_newest_first(store: Store) -> None:
    await store.put_doc("bakes", "a", {"state": "queued", "n": 1})
    await store.put_doc("bakes", "b", {"state": "queued", "n": 2})
    await store.put_doc("bakes", "a", {"state": "complete", "n": 1})
    await store.put_doc("other", "a", {"state": "elsewhere"})

    assert await store.get_doc("bakes", "a") == {"state": "complete", "n": 1}
    assert await store.get_doc("bakes", "missing") is None
    listed = await store.list_docs("bakes")
    assert [d["n"] for d in listed] == [2, 1]  # the update kept a's creation time
    assert await store.list_docs("bakes", limit=1) == [{"state": "queued", "n": 2}]


async def test_a_document_kind_outside_the_naming_rule_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="document kind"):
        await store.put_doc("../grabs", "x", {})
