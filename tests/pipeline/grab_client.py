"""Talking to a running `oven serve`: grabs, bounded waits, metrics and its processes."""

from __future__ import annotations

import time
from typing import Any

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from tests.oven_process import OvenProcess
from tests.waiting import wait_until

FINAL_STATES = {"complete", "failed", "cancelled"}


def post_grab(oven: OvenProcess, **body: Any) -> httpx.Response:
    return httpx.post(f"{oven.url}/grabs", json=body, timeout=30)


def submit(oven: OvenProcess, **body: Any) -> dict[str, Any]:
    """POST /grabs and return the accepted body; fails loudly on anything but 200/202."""
    response = post_grab(oven, **body)
    assert response.status_code in (200, 202), response.text
    accepted: dict[str, Any] = response.json()
    return accepted


def job(oven: OvenProcess, job_id: str) -> dict[str, Any]:
    response = httpx.get(f"{oven.url}/grabs/{job_id}", timeout=10)
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


def wait_for_job(oven: OvenProcess, job_id: str, states: set[str] | None = None, *,
                 timeout: float = 60) -> dict[str, Any]:
    """The job's view once it reaches one of `states` (default: any final state)."""
    wanted = states or FINAL_STATES

    def reached() -> dict[str, Any] | None:
        view = job(oven, job_id)
        return view if view["state"] in wanted else None

    try:
        view: dict[str, Any] = wait_until(f"job {job_id} to reach {sorted(wanted)}", reached,
                                          timeout=timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- serve.log tail ---\n{oven.log[-4000:]}") from None
    return view


def grab_bytes(oven: OvenProcess, *, timeout: float = 60, **body: Any) -> tuple[dict[str, Any],
                                                                              bytes]:
    """Submit, wait for completion, and fetch the result bytes."""
    accepted = submit(oven, **body)
    view = wait_for_job(oven, accepted["id"], timeout=timeout)
    assert view["state"] == "complete", view
    response = httpx.get(f"{oven.url}/grabs/{accepted['id']}/result", timeout=30)
    assert response.status_code == 200, response.text
    return view, response.content


def metric(oven: OvenProcess, name: str, labels: dict[str, str] | None = None) -> float:
    """One sample from /metrics (0 when the labelled child has not been created yet)."""
    text = httpx.get(f"{oven.url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v
                                           for k, v in (labels or {}).items()):
                return float(sample.value)
    return 0.0


def descendants(oven: OvenProcess) -> list[psutil.Process]:
    assert oven.proc is not None
    try:
        return [p for p in psutil.Process(oven.proc.pid).children(recursive=True)
                if _alive(p)]
    except psutil.NoSuchProcess:
        return []


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return []


def chromium_main(oven: OvenProcess) -> psutil.Process:
    """The browser process: it carries the owner marker and no `--type=` switch."""
    mains = [p for p in descendants(oven)
             if any(a.startswith("--oven-owner=") for a in _cmdline(p))
             and not any(a.startswith("--type=") for a in _cmdline(p))]
    assert len(mains) == 1, f"expected one main chromium, found {mains}"
    return mains[0]


def renderers(oven: OvenProcess) -> list[psutil.Process]:
    return [p for p in descendants(oven) if "--type=renderer" in _cmdline(p)]


def ffmpegs(oven: OvenProcess) -> list[psutil.Process]:
    return [p for p in descendants(oven) if (_cmdline(p) or [""])[0].endswith("ffmpeg")]


def wait_for_renderer_count(oven: OvenProcess, count: int, *, timeout: float = 15) -> None:
    seen: list[int] = []

    def settled() -> bool:
        seen.append(len(renderers(oven)))
        return seen[-1] == count

    try:
        wait_until(f"{count} renderers", settled, timeout=timeout)
    except AssertionError:
        described = [" ".join(p.cmdline())[-160:] for p in renderers(oven)]
        raise AssertionError(f"renderer count did not return to {count}: last counts "
                             f"{seen[-5:]}; renderers now: {described}") from None


def steady_renderer_count(oven: OvenProcess, *, steady_s: float = 1.5,
                          timeout: float = 20) -> int:
    """The renderer count once it has not changed for `steady_s` (contexts close lazily)."""
    deadline = time.monotonic() + timeout
    count, since = len(renderers(oven)), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = len(renderers(oven))
        if now != count:
            count, since = now, time.monotonic()
        elif count and time.monotonic() - since >= steady_s:
            return count
    raise AssertionError(f"renderer count never settled within {timeout} s (last {count})")
