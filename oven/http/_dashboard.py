"""The live dashboard at `/`: one page fed over SSE with JSON merge patches of a shared state.

One producer task gathers the state (actors, grabs, memory, frozen pieces, bakes, PTY sessions)
at most 4 times a second, and only while at least one browser is connected. Each client gets the
full snapshot first, then RFC 7386 merge patches. A client holds no queue: it remembers the last
state it was sent and, once it can send again, gets one patch from that state to the newest, so a
slow or hidden tab costs one shared reference, never a growing buffer. Every send has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from oven import __version__
from oven import _metrics as metrics
from oven._system import ActorSystem
from oven.actors._pty_session import SessionInfo
from oven.actors._store import StoreClient
from oven.http._openapi import operation
from oven.supervisor import GetStatus

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static" / "dashboard"
TICK_S = 0.25  # at most 4 states a second, for the producer and for every client
KEEPALIVE_S = 15.0  # an SSE comment when nothing changed, so idle proxies keep the stream
SEND_TIMEOUT_S = 10.0  # a client that takes no bytes for this long is disconnected
SOURCE_TIMEOUT_S = 5.0  # one slow source keeps its last value instead of stalling the tick
SLOW_EVERY = 4  # frozen pieces, bakes and PTY sessions change rarely: gathered once a second
MIB = 1 << 20
MIB_STEP = 4  # memory figures are shown in 4 MiB steps
BACKLOG_MIN = 5  # mailbox depths below this are the dashboard's own asks, not a backlog

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # Thumbnails may be redirects to a public bucket (S3), hence http:/https: for images.
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self'; style-src 'self'; "
        "img-src 'self' data: http: https:; frame-ancestors 'none'"
    ),
}

Json = dict[str, Any]
Gather = Callable[[], Awaitable[Json]]
SendBytes = Callable[[bytes], Awaitable[None]]

# -- JSON merge patch (RFC 7386) ---------------------------------------------------------------


def prune(value: Any) -> Any:
    """Drop None values from objects: in a merge patch null means "delete", never a value."""
    if isinstance(value, Mapping):
        return {str(k): prune(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [prune(v) for v in value]
    return value


def merge_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> Json:
    """The merge patch that turns `old` into `new` (both pruned); {} when they are equal."""
    patch: Json = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if key in old:
            before = old[key]
            if type(before) is type(value) and before == value:
                continue
            if isinstance(before, dict) and isinstance(value, dict):
                patch[key] = merge_diff(before, value)
                continue
        patch[key] = value
    return patch


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply a merge patch as RFC 7386 section 2 defines it; `target` is not modified."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def sse_event(event: str, version: int, body: Json) -> bytes:
    data = json.dumps(body, separators=(",", ":"), allow_nan=False)  # one line: no newlines
    return f"event: {event}\nid: {version}\ndata: {data}\n\n".encode()


# -- the shared state and its clients ----------------------------------------------------------


class DashboardHub:
    """The newest state, the patch that led to it, and one producer while anyone listens."""

    def __init__(self, gather: Gather, *, tick_s: float = TICK_S) -> None:
        self._gather = gather
        self.tick_s = tick_s
        self.version = 0
        self.ready = False  # False until the producer has gathered since it (re)started
        self.state: Json = {}
        self.patch: Json = {}  # from state `version - 1` to `version`
        self.clients = 0
        self._changed = asyncio.Event()
        self._producer: asyncio.Task[None] | None = None

    def publish(self, state: Json) -> None:
        state = prune(state)
        if self.ready and state == self.state:
            return  # nothing changed: nobody is woken, nothing is sent
        self.patch = merge_diff(self.state, state)
        self.state = state
        self.version += 1
        self.ready = True
        # Wake every waiting client at once, then give later waiters a fresh event.
        self._changed.set()
        self._changed = asyncio.Event()

    async def _produce(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                self.publish(await self._gather())
            except Exception:  # the sources guard themselves: this would be a bug here
                log.exception("dashboard: gathering the state failed")
            await asyncio.sleep(max(0.0, self.tick_s - (loop.time() - started)))

    @contextlib.asynccontextmanager
    async def connected(self) -> AsyncIterator[None]:
        self.clients += 1
        metrics.DASHBOARD_CLIENTS.inc()
        if self._producer is None:
            self._producer = asyncio.create_task(self._produce(), name="dashboard-producer")
        try:
            yield
        finally:
            self.clients -= 1
            metrics.DASHBOARD_CLIENTS.dec()
            if self.clients == 0 and self._producer is not None:
                self._producer.cancel()  # nobody watches: stop asking the actors
                self._producer = None
                self.ready = False  # the next client waits for a fresh state

    async def _wait_change(self, seen: int, timeout: float) -> bool:
        if self.ready and self.version != seen:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)
            return True
        return False

    async def stream(self, send: SendBytes, *, send_timeout_s: float = SEND_TIMEOUT_S,
                     min_interval_s: float = TICK_S, keepalive_s: float = KEEPALIVE_S) -> None:
        """Send a snapshot, then merged deltas, until cancelled; TimeoutError if a send stalls."""
        loop = asyncio.get_running_loop()
        have: Json | None = None  # the state this client was last sent: its only buffer
        have_version = 0
        last_sent = -math.inf
        async with self.connected():
            while True:
                if not await self._wait_change(have_version, keepalive_s):
                    await asyncio.wait_for(send(b": keep-alive\n\n"), send_timeout_s)
                    continue
                pause = last_sent + min_interval_s - loop.time()
                if pause > 0:
                    await asyncio.sleep(pause)  # states arriving meanwhile merge into one delta
                    continue
                version, state = self.version, self.state
                if have is None:
                    event, body = "snapshot", state
                elif version == have_version + 1:
                    event, body = "delta", self.patch  # computed once for every client
                else:
                    event, body = "delta", merge_diff(have, state)
                    metrics.DASHBOARD_DELTAS_DROPPED.inc(max(0, version - have_version - 1))
                if body or have is None:
                    await asyncio.wait_for(send(sse_event(event, version, body)), send_timeout_s)
                    last_sent = loop.time()
                have, have_version = state, version


class EventStream(Response):
    """text/event-stream from a hub, ended by a client disconnect or a stalled send."""

    def __init__(self, hub: DashboardHub, *, send_timeout_s: float = SEND_TIMEOUT_S) -> None:
        self.hub = hub
        self.send_timeout_s = send_timeout_s
        self.status_code = 200
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8"),
                   (b"cache-control", b"no-store"), (b"x-accel-buffering", b"no")]
        await asyncio.wait_for(send({"type": "http.response.start", "status": 200,
                                     "headers": headers}), self.send_timeout_s)

        async def send_bytes(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        async def until_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        streaming = asyncio.create_task(self.hub.stream(send_bytes,
                                                        send_timeout_s=self.send_timeout_s))
        watching = asyncio.create_task(until_disconnect())
        try:
            await asyncio.wait({streaming, watching}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streaming, watching):
                task.cancel()
            await asyncio.gather(streaming, watching, return_exceptions=True)
        if not streaming.cancelled() and isinstance(streaming.exception(), TimeoutError):
            # The client took nothing for send_timeout_s: leave without completing the
            # response, so the server closes the connection instead of waiting on it.
            log.info("dashboard: a client read nothing for %.0f s, disconnected",
                     self.send_timeout_s)
            metrics.DASHBOARD_STALLED.inc()
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(send({"type": "http.response.body", "body": b"",
                                         "more_body": False}), 1.0)


# -- gathering, once per tick for all clients ---------------------------------------------------


def _mib(value: Any) -> int | None:
    # In steps of MIB_STEP: a 1 MiB wobble every sample would be a delta every tick.
    return round(value / MIB / MIB_STEP) * MIB_STEP if isinstance(value, int | float) else None


def _backlog(depth: int, capacity: int | None) -> int | None:
    # Our own asks make every mailbox flicker between 0 and 2: show only a real backlog.
    return depth if depth >= max(BACKLOG_MIN, (capacity or 0) // 10) else None


def _job(view: Json, where: str) -> Json:
    request = view.get("request") or {}
    result = view.get("result") or {}
    out: Json = {
        "where": where, "state": view.get("state"), "stage": view.get("stage"),
        "piece": view.get("piece") or request.get("url"), "lane": view.get("lane"),
        "format": request.get("format"), "width": request.get("width"),
        "height": request.get("height"), "frames": request.get("frames"),
        "position": view.get("position"), "eta_s": view.get("eta_s"),
        "attempts": view.get("attempts"), "error": (view.get("error") or "")[:300] or None,
        "created_at": view.get("created_at"), "updated_at": view.get("updated_at"),
    }
    if view.get("state") == "complete" and result and view.get("id"):
        out.update(result_url=f"/grabs/{view['id']}/result",
                   content_type=result.get("content_type"), bytes=result.get("size"))
    return out


def _grabs(status: Json) -> Json:
    jobs: Json = {}
    for view in status.get("recent", []):
        jobs[view["id"]] = _job(view, "recent")
    for lane_views in (status.get("queued") or {}).values():
        for view in lane_views:
            jobs[view["id"]] = _job(view, "queued")
    for view in status.get("upload_pending", []):
        jobs[view["id"]] = _job(view, "upload_pending")
    for view in status.get("running", []):
        jobs[view["id"]] = _job(view, "running")
    return {"capturing": status.get("capturing", 0), "jobs": jobs}


def _memory(status: Json) -> Json:
    cgroup = status.get("cgroup") or {}
    return {
        "state": status.get("state"), "budget_source": status.get("budget_source"),
        "budget_mib": _mib(status.get("budget_bytes")), "soft_mib": _mib(status.get("soft_bytes")),
        "hard_mib": _mib(status.get("hard_bytes")), "tree_mib": _mib(status.get("tree_pss_bytes")),
        "components": {name: _mib(value)
                       for name, value in (status.get("pss_by_component") or {}).items()},
        "cgroup": cgroup.get("version"),
    }


def _bake(doc: Json, order: int) -> Json:
    # Bake documents belong to the bakes room: show their scalar fields, whatever they are.
    out: Json = {"order": order}
    for key, value in list(doc.items())[:24]:
        if isinstance(value, bool | int | float):
            out[key] = value
        elif isinstance(value, str):
            out[key] = value[:300]
    return out


class Sources:
    """Gathers the dashboard state from the actors; a failing source keeps its last value."""

    def __init__(self, system: ActorSystem, sections: Mapping[str, Callable[[], Awaitable[Any]]]
                 ) -> None:
        self.system = system
        self.sections = sections
        self.store = StoreClient(system.registry, timeout_s=SOURCE_TIMEOUT_S)
        self.ticks = 0
        self.last: Json = {"actors": {}, "grabs": {"capturing": 0, "jobs": {}}, "memory": {},
                           "frozen": {}, "bakes": {}, "pty": {"enabled": False, "sessions": {}}}
        self.errors: dict[str, str] = {}

    async def __call__(self) -> Json:
        sources: dict[str, Callable[[], Awaitable[Any]]] = {"actors": self._actors}
        if "grabs" in self.sections:
            sources["grabs"] = self._grabs
        if "memory" in self.sections:
            sources["memory"] = self._memory
        if self.ticks % SLOW_EVERY == 0:
            sources.update(frozen=self._frozen, bakes=self._bakes, pty=self._pty)
        self.ticks += 1
        await asyncio.gather(*(self._guarded(name, source) for name, source in sources.items()))
        return {
            "service": {"version": __version__, "healthy": self.system.healthy,
                        "escalation": self.system.escalation_reason,
                        "ready_reasons": self.system.not_ready_reasons()},
            **self.last,
            "errors": dict(self.errors),
        }

    async def _guarded(self, name: str, source: Callable[[], Awaitable[Any]]) -> None:
        try:
            self.last[name] = await asyncio.wait_for(source(), SOURCE_TIMEOUT_S)
        except Exception as exc:  # an actor restarting: show the last value and why it is old
            self.errors[name] = f"{type(exc).__name__}: {exc}"[:200]
        else:
            self.errors.pop(name, None)

    async def _actors(self) -> Json:
        # GetStatus is a blocking ask to the root supervisor: keep it off the event loop.
        rows = await asyncio.to_thread(self.system.status)
        return {row["name"]: {
            "state": row["state"], "restarts": row["restarts"], "last_exit": row["last_exit"],
            "last_exit_detail": (row.get("last_exit_detail") or "")[:200] or None,
            "up_since": row["up_since"], "mailbox_capacity": row["mailbox_capacity"],
            "backlog": _backlog(row["mailbox_depth"], row["mailbox_capacity"])} for row in rows}

    async def _grabs(self) -> Json:
        return _grabs(await self.sections["grabs"]())

    async def _memory(self) -> Json:
        return _memory(await self.sections["memory"]())

    async def _frozen(self) -> Json:
        now = time.time()
        return {f.piece: {"frozen_until": f.frozen_until, "reason": f.reason,
                          "frozen_at": f.frozen_at}
                for f in await self.store.list_frozen() if f.frozen_until > now}

    async def _bakes(self) -> Json:
        docs = await self.store.list_docs("bakes", limit=20)
        return {str(doc.get("id") or f"bake-{i}"): _bake(doc, i) for i, doc in enumerate(docs)}

    async def _pty(self) -> Json:
        if not self.system.settings.pty.enabled:
            return {"enabled": False, "sessions": {}}
        sessions: Json = {}
        for child in await self.system.ask_async("pty", GetStatus()):
            with contextlib.suppress(Exception):  # one that just exited is simply not listed
                info = await self.system.ask_async(child["name"], SessionInfo())
                stats = info.get("stats") or {}
                sessions[info["id"]] = {
                    "profile": info["profile"], "state": info["state"], "pid": info["pid"],
                    "exit_status": info["exit_status"], "cols": info["cols"],
                    "rows": info["rows"], "paused": info["paused"], "clients": info["clients"],
                    "bytes_in": stats.get("bytes_in"), "bytes_out": stats.get("bytes_out")}
        return {"enabled": True, "sessions": sessions}


# -- routes -------------------------------------------------------------------------------------


def _hub(request: Request) -> DashboardHub:
    """One hub per app, made on first use (routes are built before the app and its state)."""
    hub: DashboardHub | None = getattr(request.app.state, "dashboard", None)
    if hub is None:
        state = request.app.state
        hub = DashboardHub(Sources(state.system, state.status_sections))
        state.dashboard = hub
    return hub


@operation("The live dashboard page", responses={200: "text/html"}, tags=["dashboard"])
async def dashboard_page(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


@operation("Dashboard state over SSE: a `snapshot` event, then `delta` events (JSON merge "
           "patches, RFC 7386), at most 4 a second and none while nothing changes",
           responses={200: "text/event-stream"}, tags=["dashboard"])
async def dashboard_events(request: Request) -> Response:
    return EventStream(_hub(request))


def dashboard_routes() -> list[BaseRoute]:
    return [
        Route("/", dashboard_page, methods=["GET"]),
        Route("/dashboard/events", dashboard_events, methods=["GET"]),
        Mount("/dashboard/static", app=StaticFiles(directory=STATIC_DIR), name="dashboard-static"),
    ]


__all__ = ["DashboardHub", "EventStream", "dashboard_routes", "merge_diff", "merge_patch",
           "prune", "sse_event"]
