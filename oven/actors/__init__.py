"""oven's actors and the bounded-mailbox base they stand on."""

from oven.actors._async import AsyncActor
from oven.actors._base import (
    ActorContext,
    Deferred,
    InjectCrash,
    OvenActor,
    OvenFuture,
    Ping,
    ProcessGroups,
    Reconfigure,
)
from oven.actors._bridge import AskTimeout, LoopThread, ask_async
from oven.actors._mailbox import BoundedInbox, ControlMessage, MailboxFull

__all__ = [
    "ActorContext",
    "AskTimeout",
    "AsyncActor",
    "BoundedInbox",
    "ControlMessage",
    "Deferred",
    "InjectCrash",
    "LoopThread",
    "MailboxFull",
    "OvenActor",
    "OvenFuture",
    "Ping",
    "ProcessGroups",
    "Reconfigure",
    "ask_async",
]
