"""The `oven` command: serve, config show|check, doctor."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn

from oven import __version__
from oven._logging import setup_logging
from oven.config import ConfigError, LoadedConfig, defaults_toml, load

log = logging.getLogger("oven.cli")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_ESCALATED = 0, 1, 2, 3


def _load(args: argparse.Namespace, overrides: dict[str, Any] | None = None) -> LoadedConfig:
    try:
        return load(Path(args.config) if args.config else None, overrides=overrides)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def cmd_serve(args: argparse.Namespace) -> int:
    from oven._service import Service
    from oven.supervisor import StartFailed

    # Checked like any other source, and kept by every reload (SIGHUP, POST /admin/reload).
    flags = {"server.host": args.host, "server.port": args.port, "cluster.role": args.role}
    config = _load(args, {key: value for key, value in flags.items() if value not in (None, "")})
    server_settings = config.settings.server
    setup_logging(config.settings.log.level)
    service = Service(config)
    try:
        service.start()
    except StartFailed as exc:
        log.error("oven could not start: %s", exc)
        return EXIT_FAILED

    server_loop: list[asyncio.AbstractEventLoop] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        server_loop.append(loop)
        # SIGHUP reloads the config; the reload asks actors, so it runs off the event loop.
        loop.add_signal_handler(
            signal.SIGHUP, lambda: loop.create_task(asyncio.to_thread(service.reload_quietly))
        )
        yield

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # uvicorn waits for open responses before it stops; event streams never end by
            # themselves, so they are told first. Signal handlers run between bytecodes of the
            # loop's thread: hand the call to the loop instead of running it mid-iteration.
            if server_loop:
                server_loop[0].call_soon_threadsafe(service.close_streams)
            super().handle_exit(sig, frame)

    server = Server(uvicorn.Config(
        service.asgi_app(lifespan=lifespan), host=server_settings.host, port=server_settings.port,
        log_config=None, access_log=False, lifespan="on",
        # The client address is the peer's: X-Forwarded-For is honoured only by the edge's
        # rate limit and only with [edge] trust_forwarded (uvicorn would trust it from loopback).
        proxy_headers=False,
        timeout_graceful_shutdown=int(server_settings.shutdown_grace_s) or None,
    ))

    def escalated(why: str) -> None:
        # Called from the root supervisor's thread; uvicorn polls should_exit on its loop.
        server.should_exit = True

    service.system.on_escalate(escalated)
    # uvicorn handles SIGTERM/SIGINT while it runs, then restores the previous handlers and
    # re-raises the signal; with the default handler that would kill us before the actors stop.
    # These handlers make the re-raise a no-op so the orderly stop below always runs.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    log.info("oven %s (role %s) listening on http://%s:%d", __version__,
             config.settings.cluster.role, server_settings.host, server_settings.port)
    # Everything built at start-up lives as long as the process: moved out of the collector's
    # reach, a full collection (which holds the GIL, so every thread and the HTTP loop) costs
    # ~15 ms instead of ~100 ms (measured with bench/burst.py).
    gc.collect()
    gc.freeze()
    try:
        server.run()
    finally:
        service.stop()
    if service.system.escalated.is_set():
        log.error("exiting: %s", service.system.escalation_reason)
        return EXIT_ESCALATED
    return EXIT_OK if server.started else EXIT_FAILED


DEFAULTS_HEADER = """\
# oven: the embedded defaults, spelled out. Copy this file and change what you need;
# every key can also be set as OVEN_<SECTION>__<KEY> in the environment.
# Regenerate with `oven config defaults > config/oven.toml`; a test keeps the two identical.

"""


def cmd_config(args: argparse.Namespace) -> int:
    if args.action == "defaults":
        print(DEFAULTS_HEADER + defaults_toml(), end="")
        return EXIT_OK
    if args.action == "check":
        if not args.file:
            print("usage: oven config check FILE", file=sys.stderr)
            return EXIT_CONFIG
        try:
            load(Path(args.file), env={})
        except ConfigError as exc:
            print(f"config error: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        print(f"{args.file}: ok")
        return EXIT_OK
    print(_load(args).show(), end="")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from oven._doctor import run_checks

    config = _load(args)
    checks = run_checks(config.settings)
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:<9} {check.detail}")
    failed = [c for c in checks if not c.ok]
    print(f"\n{len(checks) - len(failed)} ok, {len(failed)} failed")
    return EXIT_FAILED if failed else EXIT_OK


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="oven", description="Capture canvas pieces in Chromium.")
    p.add_argument("--version", action="version", version=f"oven {__version__}")
    p.add_argument("--config", help="TOML config file (default: $OVEN_CONFIG, else built-in)")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    # No argparse choices: the config schema checks it, naming cluster.role like the file would.
    serve.add_argument("--role", help="all | api | worker (overrides [cluster] role)")
    serve.set_defaults(func=cmd_serve)

    config = sub.add_parser("config", help="show or check configuration")
    config.add_argument("action", choices=["show", "check", "defaults"])
    config.add_argument("file", nargs="?", help="file to check (config check)")
    config.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    config.set_defaults(func=cmd_config)

    from oven._grab_cli import add_parser as add_grab

    add_grab(sub)
    from oven.memory import add_parser as add_mem

    add_mem(sub)

    doctor = sub.add_parser("doctor", help="check Chromium, ffmpeg, storage and store")
    doctor.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    doctor.set_defaults(func=cmd_doctor)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
