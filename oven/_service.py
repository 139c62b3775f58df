"""The service as `oven serve` runs it: the actor tree, its HTTP app, start and stop."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp

from oven._tree import children
from oven.actors.baker import BakeStatus
from oven.actors.grab_queue import InstancesSeen, QueueStatus, resolve_instance_id
from oven.actors.memory_watch import MemoryStatus
from oven.config import ConfigError, LoadedConfig
from oven.http import (
    api_refusals,
    bake_routes,
    create_app,
    dashboard_routes,
    grab_routes,
    pty_page_routes,
    pty_routes,
    showcase_routes,
    worker_ops_routes,
)
from oven.readiness import ReadinessBoard
from oven.system import ActorSystem

log = logging.getLogger(__name__)


class Service:
    def __init__(self, config: LoadedConfig) -> None:
        self.config = config
        self.board = ReadinessBoard()
        self.system = ActorSystem(config, children(config.settings, self.board))
        self.system.readiness_checks.append(self._board_reason)
        self.stream_closers: list[Callable[[], None]] = []

    @property
    def role(self) -> str:
        return self.config.settings.cluster.role

    def _board_reason(self) -> list[str]:
        reasons = self.board.reasons()
        if self.role == "worker":
            reasons.pop("full", None)  # about admission, which a worker does not do
        return list(reasons)

    def start(self) -> None:
        self.system.start()

    def stop(self) -> None:
        self.system.stop()

    def asgi_app(self, *, lifespan: Any = None) -> ASGIApp:
        sections: dict[str, Callable[[], Awaitable[Any]]] = {
            "instance": self._instance_status, "instances": self._instances_status,
            "grabs": self._grab_status, "memory": self._memory_status}
        if self.role == "all":
            sections["bakes"] = self._bake_status  # the only role that runs bakes
        if self.role == "worker":
            return create_app(self.system, routes=[], ops_routes=worker_ops_routes(),
                              lifespan=lifespan, stream_closers=self.stream_closers,
                              status_sections=sections)
        # The page routes come after the API: /pty/static must not shadow /pty/sessions.
        routes = [*grab_routes(), *bake_routes(), *pty_routes(), *showcase_routes(),
                  *pty_page_routes(), *dashboard_routes()]
        if self.system.settings.compat.enabled:
            # Imported only here: a worker, or a service with compat off, never loads the old
            # routes' code and the bundler's parsers with it (~8 MB of PSS).
            from oven.compat import compat_routes

            # The old service's routes first: where a path is both (/grab/..., /icon/...), the
            # old clients' reading of it wins, since they cannot change a line.
            routes = [*compat_routes(), *routes]
        if self.role == "api":
            routes = [*api_refusals(), *routes]
        return create_app(self.system, routes=routes, lifespan=lifespan,
                          stream_closers=self.stream_closers, status_sections=sections)

    async def _instance_status(self) -> Any:
        settings = self.system.settings
        return {"id": resolve_instance_id(settings), "role": settings.cluster.role,
                "store": settings.store.backend,
                "lease_s": settings.cluster.lease_s,
                "heartbeat_s": settings.cluster.heartbeat_s}

    async def _instances_status(self) -> Any:
        return await self.system.ask_async("grab_queue", InstancesSeen())

    async def _memory_status(self) -> Any:
        return await self.system.ask_async("memory", MemoryStatus())

    async def _grab_status(self) -> Any:
        return await self.system.ask_async("grab_queue", QueueStatus())

    async def _bake_status(self) -> Any:
        return await self.system.ask_async("bakes", BakeStatus())

    def close_streams(self) -> None:
        """End open event streams (dashboard); call on the HTTP server's loop."""
        for close in self.stream_closers:
            close()

    def reload_quietly(self) -> None:
        """SIGHUP: reload, logging instead of raising (there is no caller to answer)."""
        try:
            self.system.reload()
        except ConfigError as exc:
            log.warning("config reload refused, keeping the running config: %s", exc)
