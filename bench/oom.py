"""The 2 GB box: oven serve in a 1.5 GB memory cgroup, ordinary grabs plus runaway pages.

Makes its own cgroup (v1 here; a delegated v2 subtree elsewhere) with a 1.5 GB limit, starts
`oven serve` inside it (it joins before exec, so all it starts is born inside), submits ordinary
grabs (bundled canvas 2D and WebGL pieces, 1280x720, 24 frames, virtual clock) and two
`memory-hog` pieces (40 MB per animation frame), and prints one JSON line per run: kernel OOM
kills and limit hits of the 1.5 GB cgroup, kills inside oven's per-renderer cgroups, completions
and attempts, the hogs' errors and time to die, peaks, and whether every process stayed inside.

The ordinary grabs get a queue deadline that fits the box (`--deadline`, 900 s): with the
default 120 s, 24 grabs of 24 HD frames queued at once on 2 shared cores outlive their deadline
while they wait, which measures the queue, not memory. Each configuration runs `--runs` times;
the one JSON line carries every run and the medians.

    .venv/bin/python bench/oom.py [--grabs 24] [--pages 4,auto] [--runs 3] [--deadline 900]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from oven_process import OvenProcess

from oven.memory import CgroupReader

MiB = 2**20
LIMIT = 1500 * MiB
PIECES = ["anim", "webgl", "clock", "still"]


class Outer:
    """The benchmark's own v1 memory cgroup below this process's."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def make(cls) -> Outer | str:
        reader = CgroupReader.detect()
        if reader is None or reader.version != "v1":
            return "needs a writable cgroup v1 memory hierarchy"
        directory = reader.directory / f"oven-bench-{secrets.token_hex(3)}"
        try:
            directory.mkdir()
            (directory / "memory.limit_in_bytes").write_text(str(LIMIT))
        except OSError as exc:
            return f"cannot make a memory cgroup: {exc}"
        return cls(directory)

    def read(self, name: str) -> int:
        return int((self.directory / name).read_text())

    def limit_hits(self) -> int:
        """Times the cgroup reached its limit (v1 failcnt)."""
        return self.read("memory.failcnt")

    def oom_kills(self) -> int:
        text = (self.directory / "memory.oom_control").read_text()
        return int(dict(line.split() for line in text.splitlines())["oom_kill"])

    def working_set(self) -> int:
        stat = dict(line.split() for line in (self.directory / "memory.stat").read_text()
                    .splitlines())
        return self.read("memory.usage_in_bytes") - int(stat["total_inactive_file"])

    def pids(self) -> set[int]:
        found: set[int] = set()
        for _ in range(5):  # a renderer's cgroup can go while the tree is walked
            try:
                for procs in self.directory.glob("**/cgroup.procs"):
                    found.update(int(p) for p in procs.read_text().split())
                return found
            except FileNotFoundError:
                continue
        return found

    def remove(self) -> None:
        deadline = time.monotonic() + 10
        while self.directory.exists() and time.monotonic() < deadline:
            try:
                self.directory.rmdir()
            except OSError:
                time.sleep(0.1)  # the last exits reach the cgroup a moment later


def run(pages: int | str, grabs: int, deadline_s: float, workdir: Path) -> dict[str, Any]:
    outer = Outer.make()
    if isinstance(outer, str):
        return {"bench": "oom", "skipped": outer}
    wrapper = workdir / "python-in-cgroup"
    wrapper.write_text(f'#!/bin/sh\necho $$ > {outer.directory}/cgroup.procs\n'
                       f'exec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    real, sys.executable = sys.executable, str(wrapper)
    oven = OvenProcess(workdir / f"oven-{pages}-{secrets.token_hex(2)}",
                       config={"browser": {"pages": pages}, "queue": {"deadline_s": deadline_s}})
    oven.workdir.mkdir()
    try:
        oven.start()
    finally:
        sys.executable = real
    peak_ws, stop = [0], threading.Event()
    outside: set[int] = set()

    def watch() -> None:
        assert oven.proc is not None
        while not stop.wait(0.05):
            try:
                peak_ws[0] = max(peak_ws[0], outer.working_set())
                tree = [p for p in psutil.Process(oven.proc.pid).children(recursive=True)
                        if p.status() != psutil.STATUS_ZOMBIE]  # exited: in no cgroup
            except (psutil.Error, OSError):
                continue
            inside = outer.pids()
            outside.update(p.pid for p in tree if p.pid not in inside and p.is_running()
                           and p.status() != psutil.STATUS_ZOMBIE)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    status = httpx.get(f"{oven.url}/status", timeout=10).json()["sections"]["memory"]
    try:
        with httpx.Client(base_url=oven.url, timeout=30) as client:
            started = time.monotonic()
            jobs: dict[str, dict[str, Any]] = {}
            for i in range(grabs):
                body = {"piece": PIECES[i % len(PIECES)], "format": "mp4", "width": 1280 - i,
                        "height": 720, "frames": 24, "fps": 24, "clock": "virtual"}
                jobs[client.post("/grabs", json=body).json()["id"]] = {"kind": "grab"}
                if i in (grabs // 3, 2 * grabs // 3):
                    hog = {**body, "piece": "memory-hog", "width": 1000 + i}
                    jobs[client.post("/grabs", json=hog).json()["id"]] = {
                        "kind": "hog", "submitted": time.monotonic()}
            deadline = time.monotonic() + deadline_s + 60
            views: dict[str, dict[str, Any]] = {}
            while len(views) < len(jobs) and time.monotonic() < deadline:
                for job_id, meta in jobs.items():
                    if job_id in views:
                        continue
                    view = client.get(f"/grabs/{job_id}").json()
                    if view["state"] in ("complete", "failed", "cancelled"):
                        meta["seen_final"] = time.monotonic()
                        views[job_id] = view
                time.sleep(0.2)
            elapsed = time.monotonic() - started
            after = client.get("/status").json()["sections"]["memory"]
    finally:
        stop.set()
        watcher.join()
        oven.stop()
        log = oven.log
    ordinary = [v for j, v in views.items() if jobs[j]["kind"] == "grab"]
    hogs = [(jobs[j], v) for j, v in views.items() if jobs[j]["kind"] == "hog"]
    ceiling = after.get("ceiling") or {}
    result = {
        "bench": "oom",
        "pages": pages,
        "pages_chosen": ceiling.get("pages"),
        "limit_mb": LIMIT >> 20,
        "budget_mb": status["budget_bytes"] >> 20,
        "budget_source": status["budget_source"],
        "mechanism": ceiling.get("mechanism"),
        "page_ceiling_mb": (ceiling.get("page_ceiling_bytes") or 0) >> 20,
        "browser_limit_mb": (ceiling.get("browser_limit_bytes") or 0) >> 20,
        "outer_oom_kills": outer.oom_kills(),
        "outer_limit_hits": outer.limit_hits(),
        "renderer_kills_in_own_cgroups": ceiling.get("deaths_over_ceiling"),
        "browser_cgroup": ceiling.get("browser_cgroup"),
        "grabs": grabs,
        "grabs_complete": sum(v["state"] == "complete" for v in ordinary),
        "grabs_first_attempt": sum(v["state"] == "complete" and v["attempts"] == 1
                                   for v in ordinary),
        "neighbour_attempts": sum(v["attempts"] for v in ordinary),
        # Jobs whose Chromium fell to another page's memory kill: requeued, attempt given back.
        "neighbour_requeues_not_counted": log.count("requeued, not counted"),
        "browser_crashes": log.count("browser needs a recycle: chromium disconnected"),
        "retry_reasons": sorted({m[:160] for m in re.findall(
            r"attempt \d+ failed \((.*)\); retrying", log)}),
        "grab_errors": sorted({v.get("error") or "" for v in ordinary} - {""}),
        "hog_attempts": sum(v["attempts"] for _, v in hogs),
        "hogs": [{"state": v["state"], "attempts": v["attempts"], "error": v.get("error"),
                  "seen_dead_after_s": round(m["seen_final"] - m["submitted"], 2)}
                 for m, v in hogs],
        "outer_peak_mb_with_cache": outer.read("memory.max_usage_in_bytes") >> 20,
        "outer_peak_working_set_mb": peak_ws[0] >> 20,
        "every_process_inside": not outside,
        "elapsed_s": round(elapsed, 1),
    }
    outer.remove()
    return result


MEDIANS = ["grabs_complete", "grabs_first_attempt", "neighbour_attempts",
           "neighbour_requeues_not_counted", "browser_crashes", "hog_attempts", "outer_oom_kills",
           "outer_limit_hits", "renderer_kills_in_own_cgroups", "outer_peak_mb_with_cache",
           "outer_peak_working_set_mb", "elapsed_s"]


def summary(pages: int | str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in runs if "skipped" not in r]
    if not done:
        return {"pages": pages, "skipped": runs[0].get("skipped") if runs else "no run"}
    return {"pages": pages, "pages_chosen": done[0].get("pages_chosen"), "runs": len(done),
            "median": {k: statistics.median(r[k] or 0 for r in done) for k in MEDIANS},
            "every_process_inside": all(r["every_process_inside"] for r in done)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grabs", type=int, default=24)
    parser.add_argument("--pages", default="4,auto")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--deadline", type=float, default=900.0,
                        help="the ordinary grabs' queue deadline, s")
    args = parser.parse_args()
    load_before = os.getloadavg()
    configs = [int(p) if p.isdigit() else p for p in args.pages.split(",")]
    runs: dict[str, list[dict[str, Any]]] = {str(p): [] for p in configs}
    with tempfile.TemporaryDirectory(prefix="oven-bench-oom-") as tmp:
        for _ in range(args.runs):  # interleaved, so a change in load hits both alike
            for pages in configs:
                result = run(pages, args.grabs, args.deadline, Path(tmp))
                print(json.dumps(result), file=sys.stderr, flush=True)
                runs[str(pages)].append(result)
    print(json.dumps({
        "bench": "oom", "grabs": args.grabs, "hogs": 2, "deadline_s": args.deadline,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "summary": [summary(p, runs[str(p)]) for p in configs],
        "runs": runs,
    }), flush=True)


if __name__ == "__main__":
    main()
