"""oven's actors and the bounded-mailbox base they stand on."""

from oven.actors._base import (
    ActorContext,
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
    "BoundedInbox",
    "ControlMessage",
    "LoopThread",
    "MailboxFull",
    "OvenActor",
    "OvenFuture",
    "Ping",
    "ProcessGroups",
    "Reconfigure",
    "ask_async",
]
