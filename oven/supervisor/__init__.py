"""Supervision: child specs, restart strategies, intensity/period, backoff, escalation."""

from oven.supervisor._messages import (
    AddChild,
    ChildStatus,
    GetStatus,
    RemoveChild,
    SetPolicy,
    StartChildren,
    StopChildren,
    SupervisorState,
)
from oven.supervisor._spec import (
    ActorUnavailable,
    ChildSpec,
    Registry,
    Restart,
    RestartPolicy,
    StartFailed,
    Strategy,
)
from oven.supervisor._supervisor import Supervisor

__all__ = [
    "ActorUnavailable",
    "AddChild",
    "ChildSpec",
    "ChildStatus",
    "GetStatus",
    "Registry",
    "RemoveChild",
    "Restart",
    "RestartPolicy",
    "SetPolicy",
    "StartChildren",
    "StartFailed",
    "StopChildren",
    "Strategy",
    "Supervisor",
    "SupervisorState",
]
