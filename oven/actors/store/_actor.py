"""Store actor: owns the metadata backend (SQLite or MongoDB) on its own loop."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

from oven.actors.runtime import ActorContext, AsyncActor, ask_async
from oven.config import Settings
from oven.readiness import ReadinessBoard
from oven.store import (
    Store,
    StoreOperations,
    StoreUnavailable,
    make_store,
    store_operations,
)

log = logging.getLogger(__name__)

# What a StoreCall may name: the Store protocol's operations, nothing else on the backend
# (not its lifecycle, which is the actor's, nor its internals).
OPERATIONS = store_operations()

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class StoreCall:
    operation: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


class StoreActor(AsyncActor):
    """Serialises nothing itself: each call is a coroutine on the loop, answered when done."""

    def __init__(self, ctx: ActorContext, settings: Settings, board: ReadinessBoard) -> None:
        super().__init__(ctx)
        self.settings = settings
        self.board = board
        self.store: Store | None = None

    async def start_async(self) -> None:
        self.store = make_store(self.settings.store, self.settings.server.data_dir)
        await self.store.start()
        self.own("reachability", self._watch_reachability)

    async def stop_async(self) -> None:
        if self.store is not None:
            await self.store.close()

    async def _watch_reachability(self) -> None:
        assert self.store is not None
        while True:
            try:
                await self.store.ping()
                self.board.clear("store")
            except Exception as exc:
                # Any failed ping, translated by the backend or not, means new work cannot be
                # recorded: not ready, with the reason as the backend put it.
                self.board.set("store", str(exc) or type(exc).__name__)
            await asyncio.sleep(2.0)

    def receive(self, message: Any) -> Any:
        match message:
            case StoreCall(operation=op, args=args, kwargs=kwargs):
                if op not in OPERATIONS:
                    raise ValueError(f"store has no operation {op!r}")
                return self.defer(self._call(op, args, kwargs))
        return super().receive(message)

    async def _call(self, op: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        assert self.store is not None
        try:
            result = await getattr(self.store, op)(*args, **kwargs)
        except StoreUnavailable as exc:
            self.board.set("store", str(exc))
            raise
        return result


class _Forward(Generic[P, R]):
    """A StoreClient attribute standing for one Store operation: typed by the protocol's own
    method (for mypy and for `inspect.signature`), asked of the actor by name."""

    def __init__(self, method: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]]) -> None:
        self.method = method
        signature = inspect.signature(method)
        self.signature = signature.replace(parameters=list(signature.parameters.values())[1:])

    def __set_name__(self, owner: type[Any], name: str) -> None:
        if name != self.method.__name__ or name not in OPERATIONS:
            raise TypeError(f"StoreClient.{name} must forward the Store operation of that name")

    @overload
    def __get__(self, client: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(
        self, client: StoreClient, owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...
    def __get__(self, client: StoreClient | None, owner: type[Any]) -> Any:
        if client is None:
            return self
        method = self.method

        async def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return await client.ask(method, *args, **kwargs)

        call.__name__ = call.__qualname__ = method.__name__
        call.__signature__ = self.signature  # type: ignore[attr-defined]
        return call


class StoreClient:
    """Typed async handle on the Store actor, resolved by name on every call.

    Each attribute below is a Store operation with the protocol's signature (so a StoreClient
    is a StoreOperations to mypy); a test checks that none is missing.
    """

    def __init__(self, lookup: Any, *, timeout_s: float) -> None:
        self._lookup = lookup
        self.timeout_s = timeout_s

    async def ask(self, operation: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]],
                  *args: P.args, **kwargs: P.kwargs) -> R:
        """Run `operation` (a StoreOperations method) on the actor's backend."""
        result: R = await ask_async(
            self._lookup.ref("store"), StoreCall(operation.__name__, args, kwargs),
            timeout=self.timeout_s)
        return result

    ping = _Forward(StoreOperations.ping)
    insert_job = _Forward(StoreOperations.insert_job)
    get_job = _Forward(StoreOperations.get_job)
    transition = _Forward(StoreOperations.transition)
    claim_next = _Forward(StoreOperations.claim_next)
    renew_lease = _Forward(StoreOperations.renew_lease)
    expired_leases = _Forward(StoreOperations.expired_leases)
    update_job = _Forward(StoreOperations.update_job)
    find_active = _Forward(StoreOperations.find_active)
    list_jobs = _Forward(StoreOperations.list_jobs)
    count_by_state = _Forward(StoreOperations.count_by_state)
    queued_jobs = _Forward(StoreOperations.queued_jobs)
    cache_get = _Forward(StoreOperations.cache_get)
    cache_put = _Forward(StoreOperations.cache_put)
    cache_delete = _Forward(StoreOperations.cache_delete)
    record_piece_failure = _Forward(StoreOperations.record_piece_failure)
    record_piece_success = _Forward(StoreOperations.record_piece_success)
    freeze = _Forward(StoreOperations.freeze)
    frozen_until = _Forward(StoreOperations.frozen_until)
    list_frozen = _Forward(StoreOperations.list_frozen)
    unfreeze = _Forward(StoreOperations.unfreeze)
    put_doc = _Forward(StoreOperations.put_doc)
    get_doc = _Forward(StoreOperations.get_doc)
    list_docs = _Forward(StoreOperations.list_docs)
    beat_instance = _Forward(StoreOperations.beat_instance)
    list_instances = _Forward(StoreOperations.list_instances)
    forget_instances = _Forward(StoreOperations.forget_instances)


def _is_complete(client: StoreClient) -> StoreOperations:
    return client  # mypy: a StoreClient offers every operation, with its signature
