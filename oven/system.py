"""The running service: a root supervisor over the actors, and what HTTP and the CLI ask of it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pykka

from oven import metrics
from oven.actors.runtime import ActorContext, Reconfigure, ask_async
from oven.config import LoadedConfig, Settings, diff, load
from oven.supervisor import (
    ChildSpec,
    GetStatus,
    Registry,
    RestartPolicy,
    SetPolicy,
    StartChildren,
    Supervisor,
)

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], list[str]]


def restart_policy(settings: Settings) -> RestartPolicy:
    s = settings.supervisor
    return RestartPolicy(
        intensity=s.intensity,
        period_s=s.period_s,
        backoff_initial_s=s.backoff_initial_s,
        backoff_max_s=s.backoff_max_s,
        jitter=s.jitter,
        ping_interval_s=s.ping_interval_s,
        ping_timeout_s=s.ping_timeout_s,
    )


class ActorSystem:
    """Owns the supervision tree; everyone else reaches actors by name through it."""

    ROOT = "root"

    def __init__(self, config: LoadedConfig, children: list[ChildSpec]) -> None:
        self.config = config
        self.registry = Registry()
        self.children = children
        self.escalated = threading.Event()
        self.escalation_reason: str | None = None
        self.readiness_checks: list[ReadinessCheck] = []
        self._on_escalate: list[Callable[[str], None]] = []
        self._root: pykka.ActorRef[Any] | None = None

    @property
    def settings(self) -> Settings:
        return self.config.settings

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the tree in order; raises StartFailed (with the child's name) if a child fails."""
        ctx = ActorContext(
            name=self.ROOT, mailbox_capacity=None, lookup=self.registry, on_exit=lambda *a: None
        )
        # The root's inbox is unbounded: death notices must always get through.
        self._root = Supervisor.start(
            ctx,
            children=self.children,
            registry=self.registry,
            policy=restart_policy(self.settings),
            on_escalate=self._escalate,
        )
        try:
            self._root.ask(
                StartChildren(), timeout=sum(c.start_timeout_s for c in self.children) + 5
            )
        except Exception:
            self.stop()
            raise
        metrics.HEALTHY.set(1)

    def stop(self, *, timeout: float | None = None) -> None:
        """Stop every actor in reverse start order; each child's own shutdown timeout applies."""
        if self._root is None:
            return
        budget = timeout or sum(c.shutdown_timeout_s for c in self.children) + 5
        try:
            self._root.stop(timeout=budget)
        except pykka.Timeout:
            log.error("supervision tree did not stop within %.1f s", budget)
        metrics.HEALTHY.set(0)

    def on_escalate(self, callback: Callable[[str], None]) -> None:
        self._on_escalate.append(callback)

    def _escalate(self, why: str) -> None:
        self.escalation_reason = why
        self.escalated.set()
        metrics.HEALTHY.set(0)
        for callback in self._on_escalate:
            callback(why)

    # -- health ---------------------------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        return self._root is not None and self._root.is_alive() and not self.escalated.is_set()

    def not_ready_reasons(self) -> list[str]:
        if not self.healthy:
            return ["supervisor"]
        return sorted({r for check in self.readiness_checks for r in check()})

    # -- messaging ------------------------------------------------------------------------------

    def ref(self, name: str) -> pykka.ActorRef[Any]:
        return self.registry.ref(name)

    def tell(self, name: str, message: Any) -> None:
        self.registry.ref(name).tell(message)

    def ask(self, name: str, message: Any, *, timeout: float | None = None) -> Any:
        return self.registry.ref(name).ask(
            message, timeout=timeout or self.settings.supervisor.ask_timeout_s
        )

    async def ask_async(self, name: str, message: Any, *, timeout: float | None = None) -> Any:
        return await ask_async(
            self.registry.ref(name),
            message,
            timeout=timeout or self.settings.supervisor.ask_timeout_s,
        )

    def status(self) -> list[dict[str, Any]]:
        if self._root is None or not self._root.is_alive():
            return []
        result = self._root.ask(GetStatus(), block=True, timeout=5)
        return list(result)

    # -- reload ---------------------------------------------------------------------------------

    def reload(self) -> dict[str, list[str]]:
        """Re-read the config file and environment; apply live keys, report the rest.

        Raises ConfigError (and changes nothing) when the new config is invalid.
        """
        try:
            fresh = load(self.config.path, overrides=self.config.overrides)
        except Exception:
            metrics.CONFIG_RELOADS.labels(outcome="invalid").inc()
            raise
        live, restart = diff(self.settings, fresh.settings)
        self.config = fresh
        logging.getLogger("oven").setLevel(fresh.settings.log.level)
        for name in self.registry.names():
            try:
                ref = self.registry.ref(name)
            except Exception:
                continue
            inbox = ref.actor_inbox
            capacity = getattr(fresh.settings.mailboxes, name, None)
            if capacity is not None and hasattr(inbox, "set_capacity"):
                inbox.set_capacity(capacity)
            # Reconfigure is a control message: it passes a full mailbox.
            ref.tell(Reconfigure(fresh.settings))
        if self._root is not None:
            self._root.tell(SetPolicy(restart_policy(fresh.settings)))
        metrics.CONFIG_RELOADS.labels(outcome="applied").inc()
        log.info("config reloaded: live %s; needs restart %s", live or "-", restart or "-")
        return {"applied": live, "restart_required": restart}
