"""Burst: 1 200 submissions from 60 clients plus 100 held `GET /grab/...` waits, while a prober
times `/health` and `/ready` every ~20 ms; a load balancer drops an instance that stalls them.

One `oven serve` on default settings. The 100 holders each ask for a distinct still and keep the
request open (the route waits for the capture); a second later 60 clients each POST 20 small
grabs back to back (stills and short virtual-clock animations, nearly all distinct capture keys,
every 20th a repeat). Each client has its own loopback address (127.0.x.y), so the per-address
rate limit sees 160 clients as it would in production; `--one-address` sends everything from
127.0.0.1 instead. The clients run on one thread at nice +10 (`--clients-nice`): they stand in
for machines elsewhere, so they yield this box's CPU to the service. The prober runs in its own
process at normal priority (this process's GIL does not colour its figures) and opens a fresh
connection per request, as a load balancer's health check does. After the burst every admitted
job is followed to a final state over `GET /grabs/{id}`.

Prints one JSON line: answers by status, 5xx count, admitted vs completed/failed/cancelled,
`/health` and `/ready` p50/p99/max (over the whole run and per phase), wall time. `ok` is the
target of issue 12: no 5xx, every admitted job complete, p99 <= 50 ms and max <= 250 ms for
both probes. Exits 1 when it is not met.

    .venv/bin/python bench/burst.py [--runs 3] [--one-address] [--keep-log serve.log]
                                    [--keep-samples probes.json]
    PYTHONASYNCIODEBUG=1 .venv/bin/python bench/burst.py --keep-log /tmp/serve.log
        # the service logs every loop callback over 100 ms ("Executing ... took")

Figures on main at b848be9, median of 3 runs, 2 cores shared with other work (1-minute load
average 10-17): /health p50 2.3 ms, p99 114 ms, max 922 ms; /ready p50 1.6 ms, p99 89 ms, max
346 ms (503 "full" while the queue is full, by design); no 5xx; of 1 200 POSTs about 250
admitted and 950 answered 429 (queue full); all 100 holders answered 200; 319-356 jobs admitted,
67-128 of them failed with "deadline passed while the job was queued"; about 140 s from the
first request until every job was final. At 240552c: /health p99 98 ms, max 491 ms.
At 9cc3392 on a quiet machine (load 2.6), one run: /health p50 2.0 ms, p99 80.5 ms, max 242 ms;
/ready p99 55 ms, max 208 ms; no 5xx; 309 admitted, 309 complete; 114 s. The p99 target is
not met yet (see the issue 12 note: the queue refresh's pydantic work and middleware per probe).
At 6541e7a (the queue poll reads only changed jobs, probes skip the app's stack) against 9d17c75,
medians of 3 runs each, both on a box other test runs loaded far past its 2 cores (1-minute
load 15-35): before /health p50 2.7 ms, p99 155 ms, max 575 ms, /ready p99 125 ms, max 530 ms;
after /health p50 2.2 ms, p99 134 ms, max 654 ms, /ready p99 132 ms, max 581 ms; no 5xx, every
admitted job final (many failed "deadline passed while queued" under that load). Within the
noise of such a box; the target still needs a quiet-machine run. Tried, not landed: the HTTP
loop's thread at nice -8 (p99 119 ms, max 655 ms at load 22-26; the threads it starts, e.g.
the bake checks' pool, would inherit it); sys.setswitchinterval(0.001) (p99 169 ms, max 594 ms
at load 24-35: worse).
At ec12699 on a quiet machine (load 3-6), medians of 3 runs: /health p50 2.1 ms, p99 46.6 ms,
max 195 ms; /ready p99 29.9 ms, max 166 ms: the target is met. No 5xx; 271-336 admitted, every
one complete in two runs, 3 of 336 failed in one. The same hour at 090505c: /health p99 81.5 ms,
max 494 ms, ~400 admitted and ~100 of them failed "deadline passed" after waiting. What changed:
admission refuses a job whose estimated wait is over its deadline (d4797c8), and Chromium and
ffmpeg run niced without CAP_SYS_NICE (b309986).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from oven_process import OvenProcess

SUBMISSIONS = 1200
CLIENTS = 60
HOLDERS = 100
PROBE_EVERY_S = 0.02
PROBE_TIMEOUT_S = 30.0
HOLDERS_HEAD_START_S = 1.0  # the holders are admitted first, then the burst fills the queue
FINAL = {"complete", "failed", "cancelled"}
DRAIN_TIMEOUT_S = 900.0
TARGET_P99_MS, TARGET_MAX_MS = 50.0, 250.0


# -- the prober (its own process) -------------------------------------------------------------


def _probe_once(port: int, path: str) -> tuple[int, float]:
    """Status (0 on a transport error) and milliseconds, over a fresh connection."""
    started = time.perf_counter()
    status = 0
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT_S) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Connection: close\r\n\r\n".encode())
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        status = int(data.split(b" ", 2)[1])
    except (OSError, ValueError, IndexError):
        pass
    return status, (time.perf_counter() - started) * 1000


def probe(port: int, stop: Any, out: Connection) -> None:
    """Until `stop` is set: /health then /ready every PROBE_EVERY_S, sequentially (a stall
    shows as one long sample, as a load balancer would see it); then send the samples."""
    samples: list[tuple[float, str, int, float]] = []
    tick = time.monotonic()
    while not stop.is_set():
        for path in ("/health", "/ready"):
            at = time.monotonic()  # CLOCK_MONOTONIC: comparable with the parent's clock
            status, ms = _probe_once(port, path)
            samples.append((at, path, status, ms))
        tick += PROBE_EVERY_S
        time.sleep(max(0.0, tick - time.monotonic()))
        tick = max(tick, time.monotonic() - PROBE_EVERY_S)  # after a stall: no catch-up burst
    out.send(samples)
    out.close()


# -- the load ---------------------------------------------------------------------------------


def submission(i: int) -> dict[str, Any]:
    """Small grabs, a distinct size each (distinct capture keys); every 20th repeats the one
    before it (single-flight attaches it, or the cache answers it)."""
    if i % 20 == 19:
        i -= 1
    w, h = 64 + i % 200, 48 + i // 200
    if i % 3 == 2:
        return {"piece": "anim", "format": ("webp", "gif")[i % 2], "width": w, "height": h,
                "frames": 4, "fps": 20, "clock": "virtual"}
    return {"piece": "still", "format": ("png", "jpeg")[i % 2], "width": w, "height": h}


def _client(url: str, address: str | None, *, timeout: float) -> httpx.AsyncClient:
    # An idle connection is not reused after 2 s: uvicorn closes it after 5 s, and a request
    # sent into that close would read as a transport error that is the client's doing.
    limits = httpx.Limits(keepalive_expiry=2.0)
    transport = httpx.AsyncHTTPTransport(local_address=address, retries=0, limits=limits)
    return httpx.AsyncClient(base_url=url, transport=transport, timeout=timeout)


class Tally:
    def __init__(self) -> None:
        self.answers: dict[str, collections.Counter[str]] = {
            "submit": collections.Counter(), "hold": collections.Counter()}
        self.admitted: set[str] = set()  # ids of jobs this burst created or attached to
        self.holders_done: collections.Counter[str] = collections.Counter()
        self.cache_hits = 0
        self.attached = 0


async def submitter(client: httpx.AsyncClient, indices: list[int], tally: Tally) -> None:
    for i in indices:
        try:
            r = await client.post("/grabs", json=submission(i))
        except httpx.HTTPError as exc:
            tally.answers["submit"][type(exc).__name__] += 1
            continue
        tally.answers["submit"][str(r.status_code)] += 1
        if r.status_code in (200, 202):
            body = r.json()
            tally.cache_hits += bool(body.get("cached"))
            tally.attached += bool(body.get("attached"))
            if body.get("id"):
                tally.admitted.add(body["id"])


async def holder(client: httpx.AsyncClient, i: int, tally: Tally) -> None:
    try:
        r = await client.get(f"/grab/png/{300 + i}/200/still")
    except httpx.HTTPError as exc:
        tally.answers["hold"][type(exc).__name__] += 1
        return
    tally.answers["hold"][str(r.status_code)] += 1
    if r.status_code == 200:  # the bytes: its job completed while it waited
        tally.holders_done["complete"] += 1
    elif r.status_code == 202:  # the wait ran out: followed to the end like the others
        tally.admitted.add(r.json()["id"])
    elif r.status_code in (409, 422):  # cancelled / failed while it waited
        tally.holders_done["cancelled" if r.status_code == 409 else "failed"] += 1


async def drain(url: str, ids: set[str]) -> dict[str, str]:
    """Each admitted job's final state (or its last state when DRAIN_TIMEOUT_S runs out)."""
    states: dict[str, str] = {}
    pending = set(ids)
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    gate = asyncio.Semaphore(4)
    async with _client(url, None, timeout=30) as client:

        async def check(job_id: str) -> None:
            async with gate:
                try:
                    r = await client.get(f"/grabs/{job_id}")
                except httpx.HTTPError:
                    return
            if r.status_code == 200:
                states[job_id] = r.json()["state"]
                if states[job_id] in FINAL:
                    pending.discard(job_id)

        while pending and time.monotonic() < deadline:
            await asyncio.gather(*(check(j) for j in list(pending)))
            await asyncio.sleep(1.0)  # polling an HTTP API: there is no event to wait on
    return states


def address(block: int, i: int, one_address: bool) -> str | None:
    return None if one_address else f"127.0.{block}.{i + 1}"


async def load(url: str, *, one_address: bool) -> tuple[Tally, float, float]:
    """Run the burst; returns the tally, when it started and when its last answer came."""
    tally = Tally()
    hold_timeout = 60 + 30  # queue.wait_timeout_s (default) plus slack
    holders = [_client(url, address(2, i, one_address), timeout=hold_timeout)
               for i in range(HOLDERS)]
    clients = [_client(url, address(1, i, one_address), timeout=60) for i in range(CLIENTS)]
    share = [list(range(c, SUBMISSIONS, CLIENTS)) for c in range(CLIENTS)]
    started = time.monotonic()
    try:
        holding = [asyncio.create_task(holder(c, i, tally)) for i, c in enumerate(holders)]
        await asyncio.sleep(HOLDERS_HEAD_START_S)
        await asyncio.gather(*(submitter(c, share[n], tally) for n, c in enumerate(clients)),
                             *holding)
    finally:
        for c in holders + clients:
            await c.aclose()
    return tally, started, time.monotonic()


# -- figures ----------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def latency(samples: list[tuple[float, str, int, float]], path: str,
            since: float, until: float) -> dict[str, Any]:
    mine = [(status, ms) for at, p, status, ms in samples if p == path and since <= at <= until]
    if not mine:
        return {"n": 0}
    ms = [m for _, m in mine]
    return {"n": len(ms), "p50_ms": round(percentile(ms, 0.50), 1),
            "p99_ms": round(percentile(ms, 0.99), 1), "max_ms": round(max(ms), 1),
            "status": dict(collections.Counter(str(s) for s, _ in mine))}


def run(workdir: Path, *, one_address: bool, clients_nice: int, keep_log: Path | None,
        keep_samples: Path | None) -> dict[str, Any]:
    tmp = workdir / "tmp"  # the service's TMPDIR: Chromium profiles and the like land here
    tmp.mkdir()
    oven = OvenProcess(workdir, env={"TMPDIR": str(tmp)}).start()
    context = multiprocessing.get_context("spawn")  # no fork of a process holding threads
    stop = context.Event()
    receiver, sender = context.Pipe(duplex=False)
    prober = context.Process(target=probe, args=(oven.port, stop, sender), daemon=True)
    samples: list[tuple[float, str, int, float]] = []
    code: int | None = None
    started = burst_end = finished = load_before = load_after = 0.0
    try:
        prober.start()
        time.sleep(1.0)  # a few idle samples before the burst
        load_before = os.getloadavg()[0]
        # The load generator stands in for clients on other machines: on this box it yields
        # the CPU to the service and the prober. Linux nice is per thread: only the one
        # thread that runs the load is lowered, so a next run's service starts at normal
        # priority.
        with ThreadPoolExecutor(1, initializer=os.nice, initargs=(clients_nice,)) as pool:
            tally, started, burst_end = pool.submit(
                asyncio.run, load(oven.url, one_address=one_address)).result()
            states = pool.submit(asyncio.run, drain(oven.url, tally.admitted)).result()
        finished = time.monotonic()
        load_after = os.getloadavg()[0]
    finally:
        stop.set()
        if receiver.poll(PROBE_TIMEOUT_S + 10):
            samples = receiver.recv()
        prober.join(10)
        if prober.is_alive():
            prober.kill()
            prober.join(5)
        try:
            code = oven.stop()  # raises when a process it started is still alive
        finally:
            if keep_log is not None:
                shutil.copyfile(workdir / "serve.log", keep_log)
            if keep_samples is not None:
                keep_samples.write_text(json.dumps({"started": started, "burst_end": burst_end,
                                                    "finished": finished, "samples": samples}))

    outcome = collections.Counter(states.get(j, "unknown") for j in tally.admitted)
    outcome.update(tally.holders_done)
    answers = {k: dict(sorted(v.items())) for k, v in tally.answers.items()}
    server_errors = sum(n for c in tally.answers.values() for s, n in c.items()
                        if s.isdigit() and int(s) >= 500)
    transport_errors = sum(n for c in tally.answers.values() for s, n in c.items()
                           if not s.isdigit())
    admitted = len(tally.admitted) + sum(tally.holders_done.values())
    report: dict[str, Any] = {
        "bench": "burst",
        "submissions": SUBMISSIONS, "clients": CLIENTS, "holders": HOLDERS,
        "addresses": "one" if one_address else "one per client",
        "answers": answers,
        "5xx": server_errors,
        "transport_errors": transport_errors,
        "admitted": admitted,
        "completed": outcome["complete"],
        "failed": outcome["failed"],
        "cancelled": outcome["cancelled"],
        "unfinished": admitted - outcome["complete"] - outcome["failed"] - outcome["cancelled"],
        "cache_hits": tally.cache_hits,
        "attached": tally.attached,
        "health": latency(samples, "/health", started, finished),
        "ready": latency(samples, "/ready", started, finished),
        "phases": {
            "burst": {"s": round(burst_end - started, 1),
                      "health": latency(samples, "/health", started, burst_end),
                      "ready": latency(samples, "/ready", started, burst_end)},
            "drain": {"s": round(finished - burst_end, 1),
                      "health": latency(samples, "/health", burst_end, finished),
                      "ready": latency(samples, "/ready", burst_end, finished)},
        },
        "wall_s": round(finished - started, 1),
        "loadavg_1m": [round(load_before, 1), round(load_after, 1)],  # the box's, before/after
        "exit_code": code,
    }
    probes_ok = all(report[p].get("n") and report[p]["p99_ms"] <= TARGET_P99_MS
                    and report[p]["max_ms"] <= TARGET_MAX_MS for p in ("health", "ready"))
    report["ok"] = bool(server_errors == 0 and transport_errors == 0 and code == 0
                        and report["completed"] == admitted and probes_ok)
    return report


def median_of(reports: list[dict[str, Any]]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for probe_path in ("health", "ready"):
        for stat in ("p50_ms", "p99_ms", "max_ms"):
            values = [r[probe_path][stat] for r in reports if r[probe_path].get("n")]
            if values:
                figures[f"{probe_path}_{stat}"] = statistics.median(values)
    figures["wall_s"] = statistics.median(r["wall_s"] for r in reports)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1,
                        help="fresh services in a row; with more than one, medians are added")
    parser.add_argument("--clients-nice", type=int, default=10,
                        help="nice increment of the load generator's thread (0: same as oven)")
    parser.add_argument("--one-address", action="store_true",
                        help="every client from 127.0.0.1 (one rate-limit bucket for all)")
    parser.add_argument("--keep-log", type=Path,
                        help="copy the service's log here (the last run's)")
    parser.add_argument("--keep-samples", type=Path,
                        help="write every probe sample (monotonic time, path, status, ms) here")
    args = parser.parse_args()
    reports = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="oven-burst-") as tmp:
            reports.append(run(Path(tmp), one_address=args.one_address,
                               clients_nice=args.clients_nice, keep_log=args.keep_log,
                               keep_samples=args.keep_samples))
    if len(reports) == 1:
        out = reports[0]
    else:
        out = {"bench": "burst", "median": median_of(reports),
               "ok": all(r["ok"] for r in reports), "runs": reports}
    print(json.dumps(out))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
