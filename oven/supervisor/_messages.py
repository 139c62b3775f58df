"""The supervisor's states and the messages it understands."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from oven.actors.runtime import ControlMessage
from oven.supervisor._spec import ChildSpec, RestartPolicy


class ChildStatus(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPED = "stopped"
    FAILED = "failed"


class SupervisorState(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    ESCALATED = "escalated"
    STOPPED = "stopped"


# -- messages --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartChildren:
    """Ask: start every child in order, each confirmed by a ping."""


@dataclass(frozen=True)
class StopChildren(ControlMessage):
    """Ask: stop every child in reverse order."""


@dataclass(frozen=True)
class ChildExited(ControlMessage):
    name: str
    urn: str
    reason: str  # crash | start_failed | stopped | hung | escalated
    detail: str


@dataclass(frozen=True)
class RestartChild(ControlMessage):
    name: str


@dataclass(frozen=True)
class Tick(ControlMessage):
    """Time to ping children and check the pings already sent."""


@dataclass(frozen=True)
class AddChild:
    """Ask: start one more child now (e.g. a temporary session actor); raises StartFailed."""

    spec: ChildSpec


@dataclass(frozen=True)
class RemoveChild(ControlMessage):
    """Ask: stop a child and forget it."""

    name: str


@dataclass(frozen=True)
class SetPolicy(ControlMessage):
    """A reloaded restart policy; applies to restarts from now on."""

    policy: RestartPolicy


@dataclass(frozen=True)
class GetStatus(ControlMessage):
    """Ask: a snapshot of every child."""
