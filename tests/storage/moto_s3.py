"""Start and stop a moto S3 server (a real S3 HTTP API) on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import SecretStr

from oven.storage import S3Settings
from tests.oven_process import free_port

BUCKET = "oven-test"


@dataclass
class MotoServer:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        httpx.post(f"{self.endpoint}/moto-api/reset", timeout=5).raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            # moto runs in its own session: signal the whole group so no worker outlives it.
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        assert self.process.poll() is not None
        assert not port_accepts(self.port), f"something still listens on {self.port}"


def port_accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_moto(log_path: Path) -> MotoServer:
    port = free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = MotoServer(process, port)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited early: {log_path.read_text()[-2000:]}")
        try:
            httpx.get(f"{server.endpoint}/moto-api/data.json", timeout=0.5)
            return server
        except httpx.TransportError:
            time.sleep(0.05)  # polling a port that is not listening yet; bounded by the deadline
    server.stop()
    raise RuntimeError(f"moto server did not answer within 15 s: {log_path.read_text()[-2000:]}")


def s3_settings_for(endpoint: str, **overrides: object) -> S3Settings:
    values: dict[str, object] = {
        "endpoint_url": endpoint,
        "bucket": BUCKET,
        "path_style": True,
        "access_key_id": SecretStr("testing"),
        "secret_access_key": SecretStr("testing"),
        "create_bucket": True,
        "connect_timeout_s": 1.0,
        "read_timeout_s": 10.0,
    }
    values.update(overrides)
    return S3Settings.model_validate(values)
