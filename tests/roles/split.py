"""Helpers for split deployments: an `api` instance and `worker` instances on one store."""

from __future__ import annotations

from typing import Any

import httpx
import psutil

from tests.oven_process import Config, OvenProcess
from tests.pipeline.grab_client import descendants
from tests.pipeline.test_cluster import mongo_config, sqlite_config
from tests.waiting import wait_until

__all__ = ["capture_processes", "mongo_config", "ready", "role", "sqlite_config", "status"]


def role(config: Config, name: str) -> Config:
    """`config` (one of test_cluster's) with `[cluster] role = name`."""
    return {**config, "cluster": {**config["cluster"], "role": name}}


def status(oven: OvenProcess) -> dict[str, Any]:
    response = httpx.get(f"{oven.url}/status", timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ready(oven: OvenProcess) -> httpx.Response:
    return httpx.get(f"{oven.url}/ready", timeout=10)


def capture_processes(oven: OvenProcess) -> list[str]:
    """Chromium or ffmpeg processes in the instance's tree, read from /proc (psutil)."""
    found = []
    for proc in descendants(oven):
        try:
            line = " ".join([proc.name(), *proc.cmdline()]).lower()
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
        if "chrom" in line or "ffmpeg" in line or "headless_shell" in line:
            found.append(line[:120])
    return found


def wait_ready(oven: OvenProcess, *, timeout: float = 60) -> None:
    wait_until(f"{oven.url}/ready to answer 200", lambda: ready(oven).status_code == 200,
               timeout=timeout)
