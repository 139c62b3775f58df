"""Small real actors used to exercise the runtime: they crash, hang and echo on request."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from oven.actors.runtime import AsyncActor, OvenActor


@dataclass(frozen=True)
class Echo:
    value: Any


@dataclass(frozen=True)
class Crash:
    why: str = "asked to crash"


@dataclass(frozen=True)
class Block:
    """Block the actor's thread until `release` is set; then crash if `crash_after`."""

    release: threading.Event
    started: threading.Event | None = None
    crash_after: bool = False


class Worker(OvenActor):
    def receive(self, message: Any) -> Any:
        match message:
            case Echo(value=value):
                return value
            case Crash(why=why):
                raise RuntimeError(why)
            case Block(release=release, started=started, crash_after=crash_after):
                if started is not None:
                    started.set()
                release.wait(30)
                if crash_after:
                    raise RuntimeError("crashed after blocking")
                return None
        return super().receive(message)


class FailingStart(OvenActor):
    def setup(self) -> None:
        raise RuntimeError("cannot start")


@dataclass(frozen=True)
class SpawnAndHang:
    """Start a child process in its own group, register it, then block (a hung actor)."""

    release: threading.Event
    pid_box: list[int]


@dataclass(frozen=True)
class Later:
    """Answer `value` from the actor's asyncio loop after `delay` seconds."""

    value: Any
    delay: float


class ProcessOwner(OvenActor):
    def receive(self, message: Any) -> Any:
        import subprocess

        match message:
            case SpawnAndHang(release=release, pid_box=pid_box):
                child = subprocess.Popen(["sleep", "1000"], start_new_session=True)
                self.ctx.processes.add(child.pid)  # its own group: pgid == pid
                pid_box.append(child.pid)
                release.wait(30)
                child.wait(5)
                return None
        return super().receive(message)


class Deferring(AsyncActor):
    def receive(self, message: Any) -> Any:
        import asyncio

        match message:
            case Later(value=value, delay=delay):
                async def answer() -> Any:
                    await asyncio.sleep(delay)
                    if isinstance(value, Exception):
                        raise value
                    return value

                return self.defer(answer())
        return super().receive(message)


@dataclass(frozen=True)
class BlockLoop:
    """Block the AsyncActor's event loop (not its thread) until `release` is set."""

    release: threading.Event


class LoopBlocker(AsyncActor):
    def receive(self, message: Any) -> Any:
        match message:
            case BlockLoop(release=release):
                async def stuck() -> None:
                    release.wait(30)  # deliberately blocking the loop

                self.spawn(stuck())
                return None
        return super().receive(message)
