"""Small real actors used to exercise the runtime: they crash, hang and echo on request."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from oven.actors import OvenActor


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
