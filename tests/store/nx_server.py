"""nx-27017 (a MongoDB wire-protocol server) as a subprocess on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from tests.oven_process import free_port

NX_27017 = Path(sys.executable).parent / "nx-27017"


@dataclass
class NxServer:
    proc: subprocess.Popen[bytes]
    uri: str
    workdir: Path

    def log_tail(self) -> str:
        out = self.workdir / "nx.out"
        return out.read_text(errors="replace")[-2000:] if out.exists() else ""

    def stop(self) -> None:
        """Terminate the server and prove its whole process group is gone."""
        pgid = self.proc.pid  # started with start_new_session: pid == pgid
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                # nx-27017 0.8.1 now and then (~1 run in 8) does not exit on SIGTERM; its
                # data is throwaway, so kill the group rather than wait.
                warnings.warn("nx-27017 ignored SIGTERM for 3 s; killing it", stacklevel=2)
                os.killpg(pgid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        assert self.proc.returncode is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, 0)
            raise AssertionError(f"nx-27017 left processes behind in group {pgid}")


def start_nx(workdir: Path, *, ready_timeout_s: float = 20.0) -> NxServer:
    """Start nx-27017 with its own pid file and data dir; return once pymongo can ping it."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [
        str(NX_27017),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--pid-file", str(workdir / "nx.pid"),  # one per instance, or instances collide
        "--data-dir", str(workdir / "data"),
        "--log-file", str(workdir / "nx.log"),
    ]  # fmt: skip
    with (workdir / "nx.out").open("wb") as out:
        # Its own session, so stop() can check (and if need be kill) the whole group.
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    server = NxServer(proc, f"mongodb://127.0.0.1:{port}", workdir)
    deadline = time.monotonic() + ready_timeout_s
    client: MongoClient[dict[str, object]] = MongoClient(
        server.uri, serverSelectionTimeoutMS=250, connectTimeoutMS=250
    )
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"nx-27017 exited with {proc.returncode}:\n{server.log_tail()}")
            try:
                client.admin.command("ping")
                return server
            except PyMongoError:
                if time.monotonic() > deadline:
                    server.stop()
                    raise RuntimeError(
                        f"nx-27017 did not answer ping within {ready_timeout_s} s:\n"
                        f"{server.log_tail()}"
                    ) from None
                time.sleep(0.05)
    finally:
        client.close()
