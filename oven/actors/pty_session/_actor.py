"""PtySession actor: one terminal session (a temporary child of the `pty` supervisor).

It owns a PtySession (oven.pty) on its own loop. WebSocket and SSE handlers on the HTTP loop
talk to it only by asks: `Write` resolves when the input buffer took the bytes (awaiting it is
the backpressure a paste feels), `Next` hands out the next piece of output for one client.
Input frames are at most `pty.max_frame_bytes` and each client has one `Write` in flight, so
what sits in the mailbox stays small.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from oven import metrics
from oven.actors.runtime import ActorContext, AsyncActor
from oven.pty import PtyClient, PtyProfile, PtySession, PtySettings

log = logging.getLogger(__name__)

LINGER_S = 60.0  # an exited session stays readable this long for late clients
METRICS_INTERVAL_S = 1.0

# engine stats -> the counter that accumulates their increments
_COUNTED = {
    "bytes_in": lambda: metrics.PTY_BYTES.labels(direction="in"),
    "bytes_out": lambda: metrics.PTY_BYTES.labels(direction="out"),
    "paused_seconds": lambda: metrics.PTY_PAUSED_SECONDS,
    "backpressure_events": lambda: metrics.PTY_BACKPRESSURE,
    "resyncs": lambda: metrics.PTY_RESYNCS,
    "stalled_disconnects": lambda: metrics.PTY_STALLED,
}


@dataclass(frozen=True)
class Write:
    data: bytes


@dataclass(frozen=True)
class Attach:
    controlling: bool
    from_offset: int | None = None


@dataclass(frozen=True)
class Next:
    client_id: str
    timeout_s: float


@dataclass(frozen=True)
class Ack:
    client_id: str
    offset: int


@dataclass(frozen=True)
class Detach:
    client_id: str


@dataclass(frozen=True)
class Resize:
    cols: int
    rows: int


@dataclass(frozen=True)
class SessionInfo:
    pass


@dataclass(frozen=True)
class CloseSession:
    pass


class PtySessionActor(AsyncActor):
    temporary = True  # many and short-lived: their mailbox series go with them

    def __init__(self, ctx: ActorContext, *, profile_name: str, profile: PtyProfile, cols: int,
                 rows: int, settings: PtySettings) -> None:
        super().__init__(ctx)
        self.profile_name = profile_name
        self.profile = profile
        self.size = (cols, rows)
        self.pty_settings = settings
        self.session: PtySession | None = None
        self.clients: dict[str, PtyClient] = {}
        self._published: dict[str, float] = {}
        self._state_label: str | None = None

    async def start_async(self) -> None:
        cols, rows = self.size
        self.session = await PtySession.spawn(self.name, self.profile, cols=cols, rows=rows,
                                              settings=self.pty_settings)
        assert self.session.pid is not None
        # The child leads its own session and process group: a hung actor's child is killed.
        self.ctx.processes.add(self.session.pid)
        # Owned: a reaper or publisher that dies crashes this session into its supervisor
        # instead of leaving a session nobody reaps; stop cancels both before the close below.
        self.own("reaper", self._reap)
        self.own("publisher", self._publish_loop)
        self._count_state("running")
        log.info("pty session %s started: profile %s pid %d", self.name, self.profile_name,
                 self.session.pid)

    async def stop_async(self) -> None:
        if self.session is not None:
            await self.session.close()
            self._publish()
        metrics.PTY_CLIENTS.dec(self._published.get("clients", 0.0))  # this session is gone
        self._count_state(None)

    def _count_state(self, state: str | None) -> None:
        """Move this session between the `oven_pty_sessions{state}` series."""
        if self._state_label is not None:
            metrics.PTY_SESSIONS.labels(state=self._state_label).dec()
        if state is not None:
            metrics.PTY_SESSIONS.labels(state=state).inc()
        self._state_label = state

    async def _publish_loop(self) -> None:
        while True:
            await asyncio.sleep(METRICS_INTERVAL_S)
            self._publish()

    def _publish(self) -> None:
        """Add what the engine counted since the last call to the global series."""
        if self.session is None:
            return
        stats = self.session.stats
        for key, counter in _COUNTED.items():
            delta = stats.get(key, 0.0) - self._published.get(key, 0.0)
            if delta > 0:
                counter().inc(delta)
        clients = stats.get("clients", 0.0) - self._published.get("clients", 0.0)
        if clients:
            metrics.PTY_CLIENTS.inc(clients)
        self._published = dict(stats)

    async def _reap(self) -> None:
        """After the child exits, linger for late readers, then close and end this actor."""
        assert self.session is not None
        while True:
            try:
                status = await self.session.wait_exit(timeout=3600)
                break
            except TimeoutError:
                continue
        log.info("pty session %s: child exited with status %s", self.name, status)
        self._count_state("exited")
        deadline = time.monotonic() + LINGER_S
        while time.monotonic() < deadline and any(c.attached for c in self.clients.values()):
            await asyncio.sleep(0.5)
        await self.session.close()
        self.actor_ref.stop(block=False)

    def receive(self, message: Any) -> Any:
        match message:
            case Write(data=data):
                return self.defer(self._session().write(data))
            case Attach(controlling=controlling, from_offset=from_offset):
                client = self._session().attach(controlling=controlling, from_offset=from_offset)
                client_id = uuid.uuid4().hex[:12]
                self.clients[client_id] = client
                return client_id
            case Next(client_id=client_id, timeout_s=timeout_s):
                return self.defer(self.clients[client_id].next(timeout=timeout_s))
            case Ack(client_id=client_id, offset=offset):
                acking = self.clients.get(client_id)
                if acking is not None:
                    self.loop.call_soon_threadsafe(_ack, acking, offset)  # client state: loop's
                return None
            case Detach(client_id=client_id):
                leaving = self.clients.pop(client_id, None)
                if leaving is not None:
                    self.loop.call_soon_threadsafe(leaving.detach)
                return None
            case Resize(cols=cols, rows=rows):
                self.loop.call_soon_threadsafe(self._session().resize, cols, rows)
                return None
            case SessionInfo():
                return self._info()
            case CloseSession():
                return self.defer(self._close())
        return super().receive(message)

    def _session(self) -> PtySession:
        if self.session is None:
            raise RuntimeError(f"{self.name} has no session")
        return self.session

    async def _close(self) -> None:
        await self._session().close()
        self.actor_ref.stop(block=False)

    def _info(self) -> dict[str, Any]:
        session = self._session()
        return {
            "id": self.name, "profile": self.profile_name, "state": session.state.value,
            "pid": session.pid, "exit_status": session.exit_status,
            "cols": self.size[0], "rows": self.size[1], "paused": session.paused,
            "clients": sum(1 for c in self.clients.values() if c.attached),
            "stats": session.stats,
        }


def _ack(client: PtyClient, offset: int) -> None:
    try:
        client.ack(offset)
    except ValueError as exc:  # an ack past what was sent: the client's mistake, not ours
        log.info("pty: %s", exc)

