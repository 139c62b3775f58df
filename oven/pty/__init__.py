"""PTY sessions: children on non-blocking PTY masters with end-to-end flow control.

Plain asyncio classes; the session actor and the WebSocket/SSE routes are built on them.
"""

from ._client import Closed, Message, Output, PtyClient, Resync
from ._errors import ClientDetached, InvalidTransition, PtyError, SessionEnded, SpawnError
from ._session import PtySession
from ._settings import PtyProfile, PtySettings
from ._state import SessionState

__all__ = [
    "ClientDetached",
    "Closed",
    "InvalidTransition",
    "Message",
    "Output",
    "PtyClient",
    "PtyError",
    "PtyProfile",
    "PtySession",
    "PtySettings",
    "Resync",
    "SessionEnded",
    "SessionState",
    "SpawnError",
]
