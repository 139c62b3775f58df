"""Capture benchmark: 19 grabs of the bundled canvas animation submitted at once over HTTP.

Each grab: 16 frames at 20 fps, 640x360, animated WebP, real clock, against a warm `oven serve`
on default settings (plus an allowed origin so each grab can carry a distinct query string:
identical requests would otherwise be answered by one capture through single-flight).
Runs 3 rounds and prints one JSON line with the median of each figure (and every round).

With `--instances 2` the same grabs go round-robin to two instances sharing one store (one
SQLite file, or nx-27017 with `--store mongodb`) and one results directory: the figure shows what
the shared queue's leasing costs (`lease_op_share`: time spent in claim/renew store calls over
the jobs' service time) and what a second instance buys on this machine.

    .venv/bin/python bench/capture.py [--rounds 3] [--grabs 19] [--instances 1|2]
                                      [--store sqlite|mongodb]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import contextlib

from oven_process import OvenProcess

ORIGIN = "http://pieces.oven.internal"
CLOCK = "real"


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for proc in tree(pid):
        try:
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return total


class PssSampler(threading.Thread):
    """Peak PSS of the whole process tree, sampled from smaps_rollup about every 0.25 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(0.25):
            total = 0
            for proc in tree(self.pid):
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    total += proc.memory_full_info().pss
            self.peak = max(self.peak, total)


def lease_seconds(url: str) -> float:
    """Seconds this instance spent in lease calls on the store (claims and renewals)."""
    total = 0.0
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("oven_lease_op_seconds_sum"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def one_round(urls: list[str], pids: list[int], grabs: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    bodies = [{"url": f"{ORIGIN}/anim/?bench={tag}-{i}", "format": "webp", "width": 640,
               "height": 360, "frames": 16, "fps": 20, "clock": CLOCK} for i in range(grabs)]
    samplers = [PssSampler(pid) for pid in pids]
    for sampler in samplers:
        sampler.start()
    cpu0 = sum(cpu_seconds(pid) for pid in pids)
    lease0 = sum(lease_seconds(u) for u in urls)
    async with httpx.AsyncClient(base_url=urls[0], timeout=120) as client:
        t0 = time.monotonic()
        answers = await asyncio.gather(*(
            client.post(f"{urls[i % len(urls)]}/grabs", json=b) for i, b in enumerate(bodies)))
        ids = [a.json()["id"] for a in answers]
        done: dict[str, dict[str, Any]] = {}
        finished_at: dict[str, float] = {}
        while len(done) < len(ids):
            for job_id in ids:
                if job_id in done:
                    continue
                view = (await client.get(f"/grabs/{job_id}")).json()
                if view["state"] in ("complete", "failed", "cancelled"):
                    done[job_id] = view
                    finished_at[job_id] = time.monotonic()
            await asyncio.sleep(0.05)
        wall = time.monotonic() - t0
    for sampler in samplers:
        sampler.stop_event.set()
        sampler.join()
    cpu = sum(cpu_seconds(pid) for pid in pids) - cpu0
    lease = sum(lease_seconds(u) for u in urls) - lease0
    failed = [v for v in done.values() if v["state"] != "complete"]
    latency = [finished_at[i] - t0 for i in ids]
    service = []
    for view in done.values():
        history = {h["state"]: h["at"] for h in view.get("history", [])}
        running = [h["at"] for h in view.get("history", []) if h["state"] == "running"]
        if running and "complete" in history:
            service.append(history["complete"] - running[-1])
    if not service:  # the job view carries no history: fall back to the stage timings
        service = [v["timings"].get("capture_total", 0) + v["timings"].get("encode", 0) +
                   v["timings"].get("upload", 0) for v in done.values()]
    stages = {}
    for stage in ("capture_total", "navigate", "ready", "capture", "encode", "upload"):
        values = [v["timings"][stage] for v in done.values() if stage in v.get("timings", {})]
        if values:
            stages[f"stage_{stage}_p50_s"] = statistics.median(values)
    return {
        **stages,
        "wall_s": wall,
        "grabs_per_min": 60 * grabs / wall,
        "latency_p50_s": pct(latency, 0.5),
        "latency_p95_s": pct(latency, 0.95),
        "per_grab_p50_s": pct(service, 0.5),
        "per_grab_p95_s": pct(service, 0.95),
        "cpu_s_per_grab": cpu / grabs,
        "peak_tree_pss_mb": sum(s.peak for s in samplers) / 2**20,
        "lease_op_share": lease / sum(service) if service else 0.0,
        "failed": len(failed),
        "errors": sorted({str(v.get("error")) for v in failed})[:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--grabs", type=int, default=19)
    parser.add_argument("--instances", type=int, default=1, choices=(1, 2))
    parser.add_argument("--store", default="sqlite", choices=("sqlite", "mongodb"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oven-bench-") as tmp, contextlib.ExitStack() as stack:
        shared = Path(tmp)
        config: dict[str, dict[str, Any]] = {
            "pieces": {"allowed_origins": [ORIGIN], "allow_private": True},
            "store": {"sqlite_path": str(shared / "oven.db")},
            "storage": {"local_dir": str(shared / "results")},
        }
        if args.store == "mongodb":
            from store.nx_server import start_nx

            nx = start_nx(shared / "nx")
            stack.callback(nx.stop)
            config["store"] = {"backend": "mongodb", "mongodb_uri": nx.uri}
        ovens = []
        for i in range(args.instances):
            workdir = shared / f"oven-{i}"
            workdir.mkdir()
            oven = OvenProcess(workdir, config={**config, "cluster": {"instance_id": f"i{i}"}})
            ovens.append(oven)
            stack.callback(oven.stop)
            oven.start()
        urls = [o.url for o in ovens]
        pids = [o.proc.pid for o in ovens if o.proc is not None]
        for url in urls:  # every instance warm: one grab each
            warm = httpx.post(f"{url}/grabs", json={
                "url": f"{ORIGIN}/anim/?warmup-{url}", "format": "webp", "frames": 16,
                "fps": 20}, timeout=30).json()
            deadline = time.monotonic() + 60
            while httpx.get(f"{url}/grabs/{warm['id']}").json()["state"] != "complete":
                if time.monotonic() > deadline:
                    raise SystemExit("warm-up grab did not complete")
                time.sleep(0.1)
        rounds = [asyncio.run(one_round(urls, pids, args.grabs)) for _ in range(args.rounds)]
    keys = [k for k in rounds[0] if isinstance(rounds[0][k], float)]
    summary: dict[str, Any] = {"bench": "capture", "grabs": args.grabs, "rounds": args.rounds,
                               "instances": args.instances, "store": args.store}
    summary.update({k: round(statistics.median(r[k] for r in rounds), 3) for k in keys})
    summary["failed_total"] = sum(r["failed"] for r in rounds)
    summary["each_round"] = [{k: round(r[k], 3) for k in keys} for r in rounds]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
