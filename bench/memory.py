"""Memory benchmark: what TreeSampler costs, and what each pool page costs, on a real `oven serve`.

1. Sampler cost: TreeSampler over the service's whole tree (oven, Playwright's driver, Chromium)
   at the default cheap interval and PSS rotation for `--seconds`; CPU seconds per minute and as
   a share of one core (the target is under 2 %).
2. Idle tree PSS at browser.pages = 1..4: a fresh service each, one warm-up grab, then the median
   of a few full PSS sweeps; the slope is the PSS per additional pool page.

    .venv/bin/python bench/memory.py [--seconds 30] [--pages 1,2,3,4]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from oven_process import OvenProcess

from oven.memory import MemorySettings, TreeSampler

MiB = 2**20


def warm_up(url: str, timeout_s: float = 60) -> None:
    """One grab so the browser, its pages and the driver are all up."""
    with httpx.Client(base_url=url, timeout=timeout_s + 30) as client:
        answer = client.post("/grabs", json={"piece": "still", "format": "png"})
        answer.raise_for_status()
        job_id = answer.json()["id"]
        state = client.get(f"/grabs/{job_id}", params={"wait": timeout_s}).json()["state"]
        if state != "complete":
            raise RuntimeError(f"warm-up grab ended {state} (waited up to {timeout_s:g} s)")


def service(workdir: Path, pages: int) -> OvenProcess:
    return OvenProcess(workdir, config={"browser": {"pages": pages}}).start()


def _run_sampler(pid: int, settings: MemorySettings, seconds: float) -> tuple[float, int, float]:
    """(CPU seconds, ticks, wall seconds) of a sampler ticking at the cheap interval."""
    sampler = TreeSampler(pid, settings)
    sampler.sample(full_pss=True)  # steady state: every process has a PSS already
    warm_cpu = sampler.cpu_seconds
    ticks = 0
    started = time.monotonic()
    next_at = started
    while time.monotonic() - started < seconds:
        sampler.sample()
        ticks += 1
        next_at += settings.cheap_interval_s
        time.sleep(max(0.0, next_at - time.monotonic()))
    return sampler.cpu_seconds - warm_cpu, ticks, time.monotonic() - started


def sampler_cost(seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="oven-bench-mem-") as tmp:
        oven = service(Path(tmp), 2)
        try:
            warm_up(oven.url)
            assert oven.proc is not None
            cpu, ticks, wall = _run_sampler(oven.proc.pid, MemorySettings(), seconds)
            # The cheap tier alone: no PSS rotation comes due in this run.
            cheap_cpu, _, cheap_wall = _run_sampler(
                oven.proc.pid, MemorySettings(pss_interval_s=300), seconds / 2)
            sampler = TreeSampler(oven.proc.pid, MemorySettings())
            t0 = time.perf_counter()
            full = sampler.sample(full_pss=True)
            sweep_ms = (time.perf_counter() - t0) * 1000
        finally:
            oven.stop()
    per_min = cpu * 60 / wall
    return {
        "sampler_seconds": round(wall, 1),
        "sampler_ticks": ticks,
        "sampler_processes": len(full.processes),
        "sampler_cpu_s_per_min": round(per_min, 3),
        "sampler_cpu_pct_of_core": round(per_min / 60 * 100, 2),
        "sampler_cpu_ms_per_tick": round(cpu / ticks * 1000, 2),
        "cheap_tier_only_cpu_pct_of_core": round(cheap_cpu / cheap_wall * 100, 2),
        "full_pss_sweep_ms": round(sweep_ms, 1),
        "tree_pss_mb_by_component": {k: round(v / MiB, 1)
                                     for k, v in full.pss_by_component.items() if v},
        "tree_rss_mb": round(full.total_rss / MiB, 1),
        "tree_pss_mb": round(full.total_pss / MiB, 1),
    }


def idle_pss(pages: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="oven-bench-mem-") as tmp:
        oven = service(Path(tmp), pages)
        try:
            warm_up(oven.url)
            assert oven.proc is not None
            time.sleep(2.0)  # let the finished grab's work settle (GC, renderer idle)
            sampler = TreeSampler(oven.proc.pid, MemorySettings())
            sweeps = []
            for _ in range(5):
                sweeps.append(sampler.sample(full_pss=True))
                time.sleep(0.3)
        finally:
            oven.stop()
    median = statistics.median(s.total_pss for s in sweeps)
    last = sweeps[-1]
    return {
        "pages": pages,
        "tree_pss_mb": round(median / MiB, 1),
        "tree_rss_mb": round(last.total_rss / MiB, 1),
        "processes": len(last.processes),
        "by_component_pss_mb": {k: round(v / MiB, 1)
                                for k, v in last.pss_by_component.items() if v},
    }


def slope(points: list[tuple[int, float]]) -> float:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--pages", default="1,2,3,4")
    args = parser.parse_args()
    result: dict[str, Any] = {"bench": "memory", **sampler_cost(args.seconds)}
    idle = [idle_pss(int(n)) for n in args.pages.split(",")]
    result["idle"] = idle
    if len(idle) > 1:
        points = [(i["pages"], i["tree_pss_mb"]) for i in idle]
        result["pss_mb_per_extra_page"] = round(slope(points), 1)
        result["pss_mb_steps"] = [round(b[1] - a[1], 1) for a, b in itertools.pairwise(points)]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
