"""Runtime benchmark: mailbox rejection latency, restart latency, ask round-trips.

Real actor threads and the real supervisor with the default restart policy (backoff 0.1 s
doubling, jitter ±20%). Prints one JSON line of medians and p95s.

    .venv/bin/python bench/runtime.py [--samples 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from actors_for_tests import Block, Crash, Echo, Worker

from oven.actors.runtime import ActorContext, MailboxFull, ask_async
from oven.supervisor import (
    ActorUnavailable,
    ChildSpec,
    Registry,
    RestartPolicy,
    StartChildren,
    Supervisor,
)


def p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


def rejection_latency(samples: int) -> list[float]:
    registry = Registry()
    ctx = ActorContext(name="bench-full", mailbox_capacity=1, lookup=registry,
                       on_exit=lambda *a: None)
    ref = Worker.start(ctx)
    release, started = threading.Event(), threading.Event()
    ref.tell(Block(release, started))
    started.wait(5)
    ref.tell(Echo(0))
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        try:
            ref.tell(Echo(1))
        except MailboxFull:
            out.append(time.perf_counter() - t0)
    release.set()
    ref.stop(timeout=5)
    return out


def restart_latency(samples: int) -> list[float]:
    registry = Registry()
    # A wide window so the budget is not spent: this measures backoff + start + first ping.
    policy = RestartPolicy(intensity=samples + 10, period_s=1.0)
    ctx = ActorContext(name="bench-root", mailbox_capacity=None, lookup=registry,
                       on_exit=lambda *a: None)
    root = Supervisor.start(ctx, children=[ChildSpec(id="w", start=Worker.start)],
                            registry=registry, policy=policy)
    root.ask(StartChildren(), timeout=10)
    out = []
    for _ in range(samples):
        old = registry.ref("w")
        t0 = time.perf_counter()
        old.tell(Crash())
        while True:
            try:
                ref = registry.ref("w")
                if ref.actor_urn != old.actor_urn and ref.ask(Echo(1), timeout=5) == 1:
                    break
            except ActorUnavailable:
                pass
            time.sleep(0.0005)
        out.append(time.perf_counter() - t0)
        time.sleep(1.05)  # leave the 1 s window so each restart starts from the first backoff
    root.stop(timeout=10)
    return out


def ask_latency(samples: int) -> tuple[list[float], list[float]]:
    registry = Registry()
    ctx = ActorContext(name="bench-ask", mailbox_capacity=1000, lookup=registry,
                       on_exit=lambda *a: None)
    ref = Worker.start(ctx)
    sync = []
    for _ in range(samples):
        t0 = time.perf_counter()
        ref.ask(Echo(1), timeout=5)
        sync.append(time.perf_counter() - t0)

    async def from_asyncio() -> list[float]:
        out = []
        for _ in range(samples):
            t0 = time.perf_counter()
            await ask_async(ref, Echo(1), timeout=5)
            out.append(time.perf_counter() - t0)
        return out

    bridged = asyncio.run(from_asyncio())
    ref.stop(timeout=5)
    return sync, bridged


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--restarts", type=int, default=10)
    args = parser.parse_args()
    rejected = rejection_latency(args.samples)
    restarts = restart_latency(args.restarts)
    sync, bridged = ask_latency(args.samples)
    ms: dict[str, Any] = {"bench": "runtime"}
    for name, values in (("mailbox_full_rejection", rejected), ("restart", restarts),
                         ("ask_sync", sync), ("ask_async_bridge", bridged)):
        ms[f"{name}_p50_ms"] = round(statistics.median(values) * 1000, 3)
        ms[f"{name}_p95_ms"] = round(p95(values) * 1000, 3)
    print(json.dumps(ms))


if __name__ == "__main__":
    main()
