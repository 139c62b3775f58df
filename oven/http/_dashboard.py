"""The live dashboard at `/`: one page fed over SSE (see _dashboard_hub for the stream).

One producer task gathers the state (actors, grabs, memory, frozen pieces, bakes, PTY sessions)
at most 4 times a second, and only while at least one browser is connected; every client gets
the full snapshot first, then RFC 7386 merge patches.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from oven import __version__
from oven.actors.pty_session import SessionInfo
from oven.actors.store import StoreClient
from oven.http._dashboard_hub import DashboardHub, EventStream, Json
from oven.http._errors import ApiError
from oven.http._openapi import operation
from oven.supervisor import GetStatus
from oven.system import ActorSystem

STATIC_DIR = Path(__file__).parent / "static" / "dashboard"
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
                   content_type=result.get("content_type"), bytes=result.get("size"),
                   ready=result.get("ready"), flags=result.get("flags") or None,
                   page_errors=len(result.get("page_errors") or []) or None)
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
            if "instances" in self.sections:
                sources["instances"] = self._instances
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
            async with asyncio.timeout(SOURCE_TIMEOUT_S):
                self.last[name] = await source()
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

    async def _instances(self) -> Json:
        # heartbeat_at, not an age: it changes once a heartbeat, not at every tick's delta.
        return {i["id"]: {"role": i["role"], "pages": i["pages"], "running": i["running"],
                          "heartbeat_at": i["heartbeat_at"], "this": i["this"]}
                for i in await self.sections["instances"]()}

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
        state.stream_closers.append(hub.close)
    return hub


@operation("The live dashboard page", responses={200: "text/html"}, tags=["dashboard"])
async def dashboard_page(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


@operation("Dashboard state over SSE: a `snapshot` event, then `delta` events (JSON merge "
           "patches, RFC 7386), at most 4 a second and none while nothing changes",
           responses={200: "text/event-stream", 406: None}, tags=["dashboard"])
async def dashboard_events(request: Request) -> Response:
    # EventSource always asks for text/event-stream; anything else (curl, a generic HTTP client
    # reading to the end) would wait forever on a stream that never ends.
    if "text/event-stream" not in request.headers.get("accept", ""):
        raise ApiError(406, "this is a server-sent event stream: send "
                       "'Accept: text/event-stream'", code="not_acceptable")
    return EventStream(_hub(request))


def dashboard_routes() -> list[BaseRoute]:
    return [
        Route("/", dashboard_page, methods=["GET"]),
        Route("/dashboard/events", dashboard_events, methods=["GET"]),
        Mount("/dashboard/static", app=StaticFiles(directory=STATIC_DIR), name="dashboard-static"),
    ]


__all__ = ["dashboard_routes"]
