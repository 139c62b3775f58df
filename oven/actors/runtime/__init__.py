"""The actor runtime: bounded inboxes, the async bridge, the base actors every room builds on."""

from oven.actors.runtime._async import (
    AsyncActor,
)
from oven.actors.runtime._base import (
    ActorContext,
    Deferred,
    InjectCrash,
    OvenActor,
    OvenFuture,
    Ping,
    ProcessGroups,
    Reconfigure,
)
from oven.actors.runtime._bridge import (
    AskTimeout,
    LoopThread,
    ask_async,
)
from oven.actors.runtime._limiter import (
    Limiter,
)
from oven.actors.runtime._mailbox import (
    BoundedInbox,
    ControlMessage,
    MailboxFull,
)
from oven.actors.runtime._priority import (
    lower_thread_priority,
)

__all__ = [
    "ActorContext",
    "AskTimeout",
    "AsyncActor",
    "BoundedInbox",
    "ControlMessage",
    "Deferred",
    "InjectCrash",
    "Limiter",
    "LoopThread",
    "MailboxFull",
    "OvenActor",
    "OvenFuture",
    "Ping",
    "ProcessGroups",
    "Reconfigure",
    "ask_async",
    "lower_thread_priority",
]
