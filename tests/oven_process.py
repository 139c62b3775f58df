"""Run a real `oven serve` in a child process on a free port, with its own config and data dir."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

# Every serve.log a test run has written to, so that a failed test's logs can be kept
# (tests/conftest.py copies them when OVEN_TEST_KEEP_LOGS names a directory).
SERVE_LOGS: set[Path] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port nothing is bound to, picked at random below the kernel's ephemeral range.

    `oven serve` binds it seconds after the pick. A port from bind(("127.0.0.1", 0)) comes
    from the ephemeral range, which every other bind(0) and outgoing connection on the
    machine draws from too: beside two more suites one was taken in between ("address
    already in use", 1 run of 3). Below the range only another test's pick can take it.
    """
    low = _ephemeral_low()
    for _ in range(500):
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port found below the ephemeral range ({low})")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


@dataclass
class OvenProcess:
    """`oven serve` started by a test; `stop()` asserts nothing it started is left running."""

    workdir: Path
    config: dict[str, dict[str, Any]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    descendants: set[int] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return (self.workdir / "serve.log").read_text(errors="replace")

    def start(self, *, timeout: float = 90) -> OvenProcess:
        self.port = self.port or free_port()
        sections = {k: dict(v) for k, v in self.config.items()}
        server = sections.setdefault("server", {})
        server.setdefault("port", self.port)
        server.setdefault("data_dir", str(self.workdir / "data"))
        config = write_config(self.workdir / "oven.toml", sections)
        env = {**os.environ, **self.env}
        env.pop("OVEN_CONFIG", None)
        SERVE_LOGS.add(self.workdir / "serve.log")
        out = open(self.workdir / "serve.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "oven", "serve", "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"oven serve exited {self.proc.returncode}:\n{self.log}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    self.remember_children()
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)  # polling a port: there is no event to wait on
        raise AssertionError(f"oven serve did not answer /health in {timeout} s:\n{self.log}")

    def remember_children(self) -> None:
        """Record every descendant now, so stop() can prove each one is gone."""
        assert self.proc is not None
        try:
            kids = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return
        self.descendants.update(p.pid for p in kids)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self, *, timeout: float = 60) -> int:
        """SIGTERM, wait, and assert no process it ever started is still alive."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.remember_children()
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            message = f"oven serve ignored SIGTERM for {timeout} s:\n{self.log}"
            raise AssertionError(message) from None
        self.assert_no_leftovers()
        return code

    def kill(self) -> None:
        """SIGKILL, as a crash would; leaves its children for the next start to sweep."""
        assert self.proc is not None
        self.remember_children()
        self.proc.kill()
        self.proc.wait(10)

    def assert_no_leftovers(self, timeout: float = 30) -> None:
        # Generous: the driver and Chromium run at nice 10, and beside a CPU hog at nice 0 a
        # driver that lost its pipe took more than 10 s to close its browser and exit. A
        # process that stays is still a failure, only declared later.
        deadline = time.monotonic() + timeout
        alive: list[int] = []
        while time.monotonic() < deadline:
            alive = [p for p in self.descendants if _alive(p)]
            if not alive:
                return
            time.sleep(0.1)
        names = {p: _name(p) for p in alive}
        raise AssertionError(f"processes left behind by oven serve: {names}")


Config = dict[str, dict[str, Any]]


@contextlib.contextmanager
def running_oven(workdir: Path, config: Config, *, port: int = 0) -> Iterator[OvenProcess]:
    """One `oven serve` for a fixture of any scope: started, yielded, then stopped with
    SIGTERM, which must end it with exit 0 and nothing it started left running."""
    workdir.mkdir(parents=True, exist_ok=True)
    oven = OvenProcess(workdir, config=config, port=port).start()
    try:
        yield oven
    finally:
        code = oven.stop()
    assert code == 0, f"oven serve exited {code} on SIGTERM:\n{oven.log[-3000:]}"


StartOven = Callable[..., OvenProcess]


class OvenStarter:
    """Services started by one test, each with its own config and workdir; `stop_all` stops
    them in reverse and fails on any that did not exit cleanly or left a process behind."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[OvenProcess] = []

    def __call__(self, config: Config, *, workdir: Path | None = None) -> OvenProcess:
        oven = OvenProcess(workdir or self.workdir / f"oven-{len(self.started)}", config=config)
        oven.workdir.mkdir(exist_ok=True)
        self.started.append(oven)
        return oven.start()

    def stop_all(self) -> None:
        errors = []
        for oven in reversed(self.started):
            try:
                code = oven.stop()
            except AssertionError as exc:
                errors.append(str(exc))
                continue
            if code not in (0, -signal.SIGKILL):  # -SIGKILL: a test killed it on purpose
                errors.append(f"oven serve exited {code} on SIGTERM:\n{oven.log[-3000:]}")
        assert not errors, errors


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _name(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())[:80]
    except psutil.NoSuchProcess:
        return "?"
