"""The Store actor and its client: every operation of the Store protocol, with the protocol's
own signature, run on the actor's loop; nothing outside the protocol is reachable.

A real ActorSystem with the real Store actor on a SQLite file under tmp (the backends
themselves are covered by the contract tests beside this file).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

from oven.actors.store import StoreActor, StoreCall, StoreClient
from oven.config import load
from oven.jobs import JobState
from oven.readiness import ReadinessBoard
from oven.store import JobRecord, Store
from oven.supervisor import ChildSpec
from oven.system import ActorSystem

# What the actor owns and its callers never drive: opening and closing the backend.
LIFECYCLE = {"start", "close"}


def protocol_operations() -> dict[str, inspect.Signature]:
    out = {}
    for name in dir(Store):
        member = getattr(Store, name)
        if name.startswith("_") or name in LIFECYCLE or not inspect.iscoroutinefunction(member):
            continue
        signature = inspect.signature(member)
        out[name] = signature.replace(parameters=list(signature.parameters.values())[1:])
    return out


@pytest.fixture
def system(tmp_path: Path) -> Iterator[ActorSystem]:
    (tmp_path / "oven.toml").write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n')
    config = load(tmp_path / "oven.toml", env={})
    settings, board = config.settings, ReadinessBoard()
    spec = ChildSpec(id="store", start=lambda ctx: StoreActor.start(ctx, settings, board),
                     mailbox_capacity=100, start_timeout_s=30, shutdown_timeout_s=10)
    system = ActorSystem(config, [spec])
    system.start()
    try:
        yield system
    finally:
        system.stop()


def test_the_client_offers_every_store_operation_with_the_protocols_signature(
    system: ActorSystem,
) -> None:
    client = StoreClient(system.registry, timeout_s=10)
    operations = protocol_operations()
    assert len(operations) > 20
    for name, signature in operations.items():
        assert inspect.signature(getattr(client, name)) == signature, name


def test_the_client_runs_operations_on_the_actor_with_positional_and_keyword_arguments(
    system: ActorSystem,
) -> None:
    client = StoreClient(system.registry, timeout_s=10)
    job = JobRecord.queued(id="job-1", capture_key="key-1", lane="interactive",
                           request={"piece": "spiral"}, deadline_s=60, piece="spiral")

    async def drive() -> None:
        await client.ping()
        await client.insert_job(job)
        assert await client.get_job("job-1") == job
        claimed = await client.claim_next("w1", ["interactive"], lease_s=30)
        assert claimed is not None and claimed.owner == "w1"
        assert await client.renew_lease("job-1", "w1", lease_s=30, claim=claimed.claim)
        done = await client.transition("job-1", JobState.COMPLETE, expect=JobState.RUNNING,
                                       expect_claim=claimed.claim, note="done", error=None)
        assert done.state is JobState.COMPLETE
        await client.cache_put("key-1", {"url": "u"}, 60)
        assert await client.cache_get("key-1") == {"url": "u"}
        assert (await client.list_jobs(limit=1))[0].id == "job-1"

    asyncio.run(drive())


@pytest.mark.parametrize("operation", ["close", "start", "_call", "__init__", "nonesuch"])
def test_the_actor_refuses_any_operation_outside_the_protocol(
    system: ActorSystem, operation: str
) -> None:
    with pytest.raises(ValueError, match="no operation"):
        system.ask("store", StoreCall(operation), timeout=10)
    system.ask("store", StoreCall("ping"), timeout=10)  # and it goes on serving
