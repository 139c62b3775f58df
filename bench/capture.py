"""Capture benchmark: 19 grabs of the bundled canvas animation submitted at once over HTTP.

Each grab: 16 frames at 20 fps, 640x360, animated WebP, real clock, against a warm `oven serve`
on default settings (plus an allowed origin so each grab can carry a distinct query string:
identical requests would otherwise be answered by one capture through single-flight).
Runs 3 rounds and prints one JSON line with the median of each figure (and every round).

    .venv/bin/python bench/capture.py [--rounds 3] [--grabs 19]
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


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def one_round(url: str, pid: int, grabs: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    bodies = [{"url": f"{ORIGIN}/anim/?bench={tag}-{i}", "format": "webp", "width": 640,
               "height": 360, "frames": 16, "fps": 20, "clock": CLOCK} for i in range(grabs)]
    sampler = PssSampler(pid)
    sampler.start()
    cpu0 = cpu_seconds(pid)
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        t0 = time.monotonic()
        answers = await asyncio.gather(*(client.post("/grabs", json=b) for b in bodies))
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
    sampler.stop_event.set()
    sampler.join()
    cpu = cpu_seconds(pid) - cpu0
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
        "peak_tree_pss_mb": sampler.peak / 2**20,
        "failed": len(failed),
        "errors": sorted({str(v.get("error")) for v in failed})[:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--grabs", type=int, default=19)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oven-bench-") as tmp:
        oven = OvenProcess(Path(tmp), config={
            "pieces": {"allowed_origins": [ORIGIN], "allow_private": True},
        }).start()
        try:
            assert oven.proc is not None
            pid = oven.proc.pid
            warm = httpx.post(f"{oven.url}/grabs", json={
                "url": f"{ORIGIN}/anim/?warmup", "format": "webp", "frames": 16, "fps": 20},
                timeout=30).json()
            deadline = time.monotonic() + 60
            while httpx.get(f"{oven.url}/grabs/{warm['id']}").json()["state"] != "complete":
                if time.monotonic() > deadline:
                    raise SystemExit("warm-up grab did not complete")
                time.sleep(0.1)
            rounds = [asyncio.run(one_round(oven.url, pid, args.grabs))
                      for _ in range(args.rounds)]
        finally:
            oven.stop()
    keys = [k for k in rounds[0] if isinstance(rounds[0][k], float)]
    summary: dict[str, Any] = {"bench": "capture", "grabs": args.grabs, "rounds": args.rounds}
    summary.update({k: round(statistics.median(r[k] for r in rounds), 3) for k in keys})
    summary["failed_total"] = sum(r["failed"] for r in rounds)
    summary["each_round"] = [{k: round(r[k], 3) for k in keys} for r in rounds]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
