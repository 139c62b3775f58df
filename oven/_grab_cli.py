"""`oven grab`: one capture through the same actors as the service, no server needed."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from oven._logging import setup_logging
from oven.actors.grab_queue import GrabView, PieceFrozen, QueueFull
from oven.config import ConfigError, load
from oven.encode import Format
from oven.grabs import GrabRequest
from oven.http import ApiError, GrabClient, LimitsExceeded, validated
from oven.jobs import JobState

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(sub: Any) -> None:
    grab = sub.add_parser("grab", help="capture one piece or URL to a file (no server needed)")
    grab.add_argument("target", help="a piece name, or a URL from an allowed origin")
    grab.add_argument("--format", default="png", choices=[f.value for f in Format])
    grab.add_argument("--size", default="640x360", help="WIDTHxHEIGHT in CSS pixels")
    grab.add_argument("--density", type=float, default=1.0)
    grab.add_argument("--frames", type=int, default=None,
                      help="frames to capture (default 1 for stills, 16 for animations)")
    grab.add_argument("--fps", type=float, default=20.0)
    grab.add_argument("--duration", type=float, default=None, help="seconds (sets frames)")
    grab.add_argument("--clock", choices=["real", "virtual"], default="real")
    grab.add_argument("-o", "--output", help="file to write (default: TARGET.EXT here)")
    grab.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    grab.set_defaults(func=cmd_grab)


def _request(args: argparse.Namespace) -> dict[str, Any]:
    """The grab as a request body: the grab client validates it as it does the API's."""
    width, _, height = args.size.partition("x")
    fmt = Format(args.format)
    frames = args.frames if args.frames is not None else (16 if fmt.animates else 1)
    data: dict[str, Any] = {"format": fmt, "width": width, "height": height,
                            "density": args.density, "frames": frames, "fps": args.fps,
                            "clock": args.clock}
    if args.duration is not None:
        data["duration"] = args.duration
    data["url" if "://" in args.target or args.target.startswith(("javascript:", "data:"))
         else "piece"] = args.target
    return data


def cmd_grab(args: argparse.Namespace) -> int:
    from oven._service import Service

    try:
        # `oven grab` runs its own capture in this process, whatever role the config gives
        # the service (an api role would queue the job with nothing here to claim it).
        config = load(Path(args.config) if getattr(args, "config", None) else None,
                      overrides={"cluster.role": "all"})
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        grab, target = asyncio.run(validated(config.settings, _request(args)))
    except LimitsExceeded as exc:
        print("oven grab: " + "; ".join(f"{f}: {m}" for f, m in exc.violations),
              file=sys.stderr)
        return EXIT_USAGE
    except ApiError as exc:
        print(f"oven grab: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    output = Path(args.output or f"{_stem(args.target)}.{grab.format.extension}")
    setup_logging("WARNING")
    service = Service(config)
    progress = Progress(sys.stderr)
    progress.say("starting chromium and ffmpeg actors")
    try:
        service.start()
        return asyncio.run(_grab(service, grab, target, output, progress))
    except KeyboardInterrupt:
        progress.done("interrupted")
        return EXIT_FAILED
    finally:
        service.stop()


def _stem(target: str) -> str:
    if "://" not in target:
        return target
    return "".join(c if c.isalnum() else "-" for c in target.split("://", 1)[1])[:40] or "grab"


async def _grab(service: Any, grab: GrabRequest, target: str, output: Path,
                progress: Progress) -> int:
    client = GrabClient(service.system)
    try:
        accepted = await client.submit(grab, target)
    except (QueueFull, PieceFrozen, ApiError) as exc:
        progress.done(f"refused: {exc}")
        return EXIT_FAILED
    view = accepted.view
    while not view.state.is_final:
        progress.show(view)
        await asyncio.sleep(0.2)
        assert view.id is not None  # only a cache hit has none, and it is final
        view = await client.job(view.id)
    if view.result is None or view.state is not JobState.COMPLETE:
        progress.done(f"{view.state.value}: {view.error}")
        return EXIT_FAILED
    result = view.result
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("wb") as out:
        async for chunk in client.chunks(result, timeout_s=60):
            out.write(chunk)
    cached = " (from cache)" if accepted.cached else ""
    progress.done(f"wrote {output} ({result.size} bytes, {result.content_type}, "
                  f"{result.frames or 1} frames){cached}")
    return EXIT_OK


class Progress:
    """One updating line on a terminal, one line per change otherwise."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.t0 = time.monotonic()
        self.last = ""

    def _emit(self, text: str, *, final: bool = False) -> None:
        line = f"[{time.monotonic() - self.t0:5.1f}s] {text}"
        if self.tty:
            self.stream.write("\r\033[K" + line + ("\n" if final else ""))
        elif text != self.last or final:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.last = text

    def say(self, text: str) -> None:
        self._emit(text)

    def show(self, view: GrabView) -> None:
        where = f" position {view.position}" if view.position else ""
        state, stage = view.state.value, view.stage
        shown = state if stage in (None, state) else f"{state}: {stage}"
        self._emit(f"{shown}{where}")

    def done(self, text: str) -> None:
        self._emit(text, final=True)
