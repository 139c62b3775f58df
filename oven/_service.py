"""The service as `oven serve` runs it: the actor tree, its HTTP app, start and stop."""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import ASGIApp

from oven._system import ActorSystem
from oven._tree import children
from oven.config import ConfigError, LoadedConfig
from oven.http import create_app

log = logging.getLogger(__name__)


class Service:
    def __init__(self, config: LoadedConfig) -> None:
        self.config = config
        self.system = ActorSystem(config, children(config.settings))

    def start(self) -> None:
        self.system.start()

    def stop(self) -> None:
        self.system.stop()

    def asgi_app(self, *, lifespan: Any = None) -> ASGIApp:
        return create_app(self.system, lifespan=lifespan)

    def reload_quietly(self) -> None:
        """SIGHUP: reload, logging instead of raising (there is no caller to answer)."""
        try:
            self.system.reload()
        except ConfigError as exc:
            log.warning("config reload refused, keeping the running config: %s", exc)
