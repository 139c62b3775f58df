"""Idle memory of each `[cluster] role`: the PSS of each instance's whole process tree.

An `api` and a `worker` share one SQLite file and one results directory (a split deployment on
one host); an `all` instance runs on its own store for comparison. One grab goes through the
API (run by the worker) and one through the `all` instance, so every part is warm; after a
short settle, the median of five full PSS sweeps of each tree (oven.memory.TreeSampler).
Prints one JSON line.

    .venv/bin/python bench/roles.py [--pages 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory import warm_up
from oven_process import OvenProcess

from oven.memory import MemorySettings, TreeSampler

MiB = 2**20
SETTLE_S = 3.0


def grab_once(url: str) -> None:
    warm_up(url, timeout_s=120)


def tree_pss(oven: OvenProcess) -> dict[str, Any]:
    assert oven.proc is not None
    sampler = TreeSampler(oven.proc.pid, MemorySettings())
    sweeps = []
    for _ in range(5):
        sweeps.append(sampler.sample(full_pss=True))
        time.sleep(0.3)
    last = sweeps[-1]
    return {
        "tree_pss_mb": round(statistics.median(s.total_pss for s in sweeps) / MiB, 1),
        "processes": len(last.processes),
        "by_component_pss_mb": {k: round(v / MiB, 1)
                                for k, v in last.pss_by_component.items() if v},
    }


def config(shared: Path, role: str, pages: int) -> dict[str, dict[str, Any]]:
    return {
        "store": {"sqlite_path": str(shared / "oven.db")},
        "storage": {"backend": "local", "local_dir": str(shared / "results")},
        "cluster": {"role": role, "instance_id": role},
        "browser": {"pages": pages},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oven-bench-roles-") as tmp:
        root = Path(tmp)
        for name in ("split", "alone", "api", "worker", "all"):
            (root / name).mkdir()
        started: list[OvenProcess] = []
        try:
            api = OvenProcess(root / "api", config=config(root / "split", "api", args.pages))
            started.append(api.start())
            worker = OvenProcess(root / "worker",
                                 config=config(root / "split", "worker", args.pages))
            started.append(worker.start())
            every = OvenProcess(root / "all", config=config(root / "alone", "all", args.pages))
            started.append(every.start())
            grab_once(api.url)
            grab_once(every.url)
            time.sleep(SETTLE_S)  # let the grabs' work settle (GC, renderers idle)
            result = {"pages": args.pages, "api": tree_pss(api), "worker": tree_pss(worker),
                      "all": tree_pss(every)}
        finally:
            for oven in reversed(started):
                oven.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
