"""Soak: hundreds of mixed grabs plus PTY pastes through one `oven serve`; nothing leaks or is lost.

Mostly small grabs (the machine has 2 cores) across every format, a few larger ones, and
terminal pastes interleaved. Reports the whole tree's PSS (oven's own MemoryWatch figure) once
warm and at the end, both measured idle; then stops the service and checks that no process and
no temp dir is left and that every job is in the store as `complete`, or `failed` with a reason.
Prints one JSON line; exits 1 when a check fails.

    OVEN_SOAK_GRABS=500 OVEN_SOAK_PASTES=20 .venv/bin/python bench/soak.py   # `make soak`
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from oven_process import OvenProcess
from websockets.sync.client import connect

from oven.store import StoreSettings, make_store

GRABS = int(os.environ.get("OVEN_SOAK_GRABS", "500"))
PASTES = int(os.environ.get("OVEN_SOAK_PASTES", "20"))
IN_FLIGHT = 16  # grabs submitted but not finished; well under queue.max_queued
WARMUP_SHARE = 0.1  # the PSS baseline is taken idle after this share of the grabs...
WARMUP_MIN = 30  # ...but not before this many (pages, contexts and GPU process all started)
WARMUP_KINDS = [("still", "png", 1), ("still", "jpeg", 1), ("anim", "webp", 8),
                ("anim", "gif", 8), ("anim", "mp4", 8), ("webgl", "webp", 8),
                ("webgl", "mp4", 8), ("anim", "webp", 24)]
PASTE_BYTES = 256 * 1024
TOKEN = "soak-pty-token"
FINAL = {"complete", "failed", "cancelled"}
# A raw-mode consumer that reads exactly n bytes and exits 0: the paste arrived whole.
CONSUMER = ("import os,sys; n=int(sys.argv[1]); got=0\n"
            "while got < n:\n"
            "    chunk = os.read(0, 1 << 16)\n"
            "    if not chunk: sys.exit(1)\n"
            "    got += len(chunk)\n")


def grab_body(i: int, rng: random.Random) -> dict[str, Any]:
    """Mostly small stills and short animations; each size unique, so no cache hit or merge."""
    w, h = 96 + i, 64 + (i * 7) % 200
    if i < len(WARMUP_KINDS):  # every piece and format once, before the warm baseline
        piece, fmt, frames = WARMUP_KINDS[i]
        return {"piece": piece, "format": fmt, "width": w, "height": h, "frames": frames,
                "fps": 20, "clock": "virtual"}
    roll = rng.random()
    if roll < 0.45:
        return {"piece": "still", "format": rng.choice(["png", "jpeg"]), "width": w, "height": h}
    if roll < 0.90:
        return {"piece": "anim", "format": rng.choice(["webp", "gif", "mp4"]), "width": w,
                "height": h, "frames": rng.choice([4, 8, 12]), "fps": 20, "clock": "virtual"}
    return {"piece": rng.choice(["anim", "webgl"]), "format": rng.choice(["webp", "mp4"]),
            "width": 640, "height": 360 + i % 50, "frames": 24, "fps": 20, "clock": "virtual"}


def status_memory(oven: OvenProcess) -> dict[str, Any]:
    memory: dict[str, Any] = httpx.get(f"{oven.url}/status", timeout=30).json()["sections"][
        "memory"]
    return memory


def idle_pss(oven: OvenProcess) -> int:
    """The tree's PSS once nothing runs and MemoryWatch has taken a fresh full PSS sweep."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        grabs = httpx.get(f"{oven.url}/grab-status", timeout=30).json()
        if not grabs.get("running") and not any(grabs.get("queued", {}).values()):
            break
        time.sleep(0.5)  # polling an HTTP API: there is no event to wait on
    time.sleep(8)  # > 2 x memory.pss_interval_s: the figure is a sweep taken while idle
    return int(status_memory(oven)["tree_pss_bytes"])


def paste(oven: OvenProcess) -> bool:
    """One PTY session: paste PASTE_BYTES into a raw consumer; True when it read them all."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = httpx.post(f"{oven.url}/pty/sessions", json={"profile": "consumer"}, headers=auth,
                   timeout=30)
    r.raise_for_status()
    session = r.json()
    url = f"ws://127.0.0.1:{oven.port}{session['ws_url']}?token={TOKEN}"
    data = os.urandom(PASTE_BYTES)
    status = None
    with connect(url, max_size=None, open_timeout=30) as ws:
        for start in range(0, PASTE_BYTES, 65536):
            ws.send(data[start:start + 65536])
        deadline = time.monotonic() + 60
        while status is None and time.monotonic() < deadline:
            message = ws.recv(timeout=60)
            if isinstance(message, str) and json.loads(message).get("type") == "exit":
                status = json.loads(message).get("status")
    httpx.delete(f"{oven.url}/pty/sessions/{session['id']}", headers=auth, timeout=30)
    return status == 0


def stored_states(data_dir: Path, ids: list[str]) -> dict[str, tuple[str, str | None]]:
    async def read() -> dict[str, tuple[str, str | None]]:
        store = make_store(StoreSettings(backend="sqlite"), data_dir)
        await store.start()
        try:
            found = {}
            for job_id in ids:
                record = await store.get_job(job_id)
                if record is not None:
                    found[job_id] = (record.state.value, record.error)
            return found
        finally:
            await store.close()

    return asyncio.run(read())


def run(workdir: Path) -> dict[str, Any]:
    tmp = workdir / "tmp"  # the service's TMPDIR: Chromium profiles and the like land here
    tmp.mkdir()
    oven = OvenProcess(workdir, env={"TMPDIR": str(tmp)}, config={
        "pty": {"enabled": True, "token": TOKEN},
        "pty.profiles.consumer": {"command": [sys.executable, "-c", CONSUMER, str(PASTE_BYTES)],
                                  "raw": True},
    }).start()
    rng = random.Random(5)
    ids: list[str] = []
    pending: set[str] = set()
    states: dict[str, str] = {}
    paste_results: list[bool] = []
    pasters: list[threading.Thread] = []
    paste_every = max(1, GRABS // max(1, PASTES))
    warm_at = max(1, int(GRABS * WARMUP_SHARE), min(WARMUP_MIN, GRABS // 2))
    pss_warm = pss_end = 0
    rejected = cached = 0
    started = time.monotonic()
    try:
        i = 0
        while i < GRABS or pending:
            for job_id in list(pending):
                state = httpx.get(f"{oven.url}/grabs/{job_id}", timeout=30).json()["state"]
                if state in FINAL:
                    states[job_id] = state
                    pending.discard(job_id)
            if i == warm_at and not pending and not pss_warm:
                pss_warm = idle_pss(oven)
            while i < GRABS and len(pending) < IN_FLIGHT and not (i == warm_at and not pss_warm):
                r = httpx.post(f"{oven.url}/grabs", json=grab_body(i, rng), timeout=30)
                if r.status_code == 429:
                    rejected += 1
                    break  # back off until the queue drains a little
                r.raise_for_status()
                accepted = r.json()
                if accepted["id"] is None:  # a repeat answered from the result cache
                    cached += 1
                else:
                    ids.append(accepted["id"])
                    pending.add(accepted["id"])
                if i % paste_every == 0 and len(pasters) < PASTES:
                    thread = threading.Thread(target=lambda: paste_results.append(paste(oven)),
                                              daemon=True)
                    thread.start()
                    pasters.append(thread)
                i += 1
            time.sleep(0.25)  # polling job states over HTTP
        for thread in pasters:
            thread.join(120)
        pss_end = idle_pss(oven)
    finally:
        code = oven.stop()  # raises when a process it started is still alive
    elapsed = time.monotonic() - started

    stored = stored_states(workdir / "data", ids)
    unaccounted = [j for j in ids if j not in stored
                   or not (stored[j][0] == "complete" or (stored[j][0] == "failed"
                                                          and stored[j][1]))]
    left_dirs = [str(p) for p in tmp.iterdir()]
    for sub in ("jobs", "pending"):
        left_dirs += [str(p) for p in (workdir / "data" / sub).glob("*")]
    growth = (pss_end - pss_warm) / pss_warm if pss_warm else None
    outcome = {state: sum(1 for s, _ in stored.values() if s == state)
               for state in ("complete", "failed", "cancelled")}
    report = {
        "bench": "soak",
        "grabs": len(ids) + cached,
        "jobs": len(ids),
        "cache_hits": cached,
        "outcomes": outcome,
        "rejected_429": rejected,
        "pastes": len(paste_results),
        "pastes_ok": sum(paste_results),
        "wall_s": round(elapsed, 1),
        "grabs_per_min": round(len(ids) / elapsed * 60, 1),
        "pss_warm_mb": round(pss_warm / 2**20, 1),
        "pss_end_mb": round(pss_end / 2**20, 1),
        "pss_growth_pct": round(growth * 100, 1) if growth is not None else None,
        "exit_code": code,
        "leftover_processes": 0,  # oven.stop() asserted it
        "leftover_temp_dirs": left_dirs,
        "unaccounted_jobs": unaccounted,
        "failed_reasons": sorted({e or "" for s, e in stored.values() if s == "failed"})[:5],
    }
    report["ok"] = bool(
        code == 0 and not unaccounted and not left_dirs and len(ids) + cached == GRABS
        and sum(paste_results) == len(pasters) == min(PASTES, GRABS)
        and growth is not None and growth < 0.10)
    return report


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="oven-soak-") as tmp:
        report = run(Path(tmp))
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
