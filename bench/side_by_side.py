"""Side by side: the old architecture against oven (real and virtual clock), in one invocation.

Contenders, run in turn each round on the same piece (`anim`, every grab a distinct URL so
nothing is answered from a cache or by single-flight): 16 frames at 20 fps, 640x360, animated
WebP, all grabs handed over at once to a warm contender. Each round starts, warms, measures and
stops each contender in turn, so none is measured beside another's Chromium (which would share
library pages with it and lower its PSS).

- `baseline`: the old service's architecture as its report describes it, in a child process of
  this script: one shared Chromium (/usr/bin/chromium, oven's switches), one page, a serial queue
  guarded by a boolean with 100 ms between jobs, 16 `page.screenshot()` calls 50 ms apart written
  as PNG files, then ffmpeg to animated WebP (oven's libwebp settings). Pieces come from a local
  HTTP server in this process, standing in for the remote site the old service loaded them from.
- `oven_real`, `oven_virtual`: a warm `oven serve` on default settings, POST /grabs with
  `clock` real or virtual, each waited for with one long poll (GET /grabs/{id}?wait=60);
  then `oven_stills`: as many 640x360 PNG stills.

For each: wall, speed-up against the baseline of the same round, CPU-seconds per grab by
component over the contender's whole process tree (bench/_cpu.py: the root's descendants'
utime+stime sampled every 50 ms, plus reaped children's cutime+cstime), and peak tree PSS.
Prints one JSON line: medians of the rounds, and every round.

    .venv/bin/python bench/side_by_side.py [--rounds 3] [--grabs 19] [--target url|piece]
                                           [--set browser.pace_frames=false ...]
                                           [--only oven_real ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import http.server
import json
import os
import shutil
import statistics
import subprocess
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cpu import TreeSampler, Usage
from oven_process import OvenProcess

from oven.capture import BrowserSettings, pieces_dir
from oven.encode import EncoderSettings

ORIGIN = "http://pieces.oven.internal"
WIDTH, HEIGHT, FRAMES, FPS = 640, 360, 16, 20
BETWEEN_JOBS_S = 0.1  # the old queue's pause before it looks at the next job


# --- the old architecture, run as `side_by_side.py --baseline-worker` -------------------------

class OldQueue:
    """The old grabber's queue: a list, an `isProcessing` flag, the next job 100 ms later."""

    def __init__(self, page: Any, workdir: Path, total: int) -> None:
        self.page, self.workdir, self.total = page, workdir, total
        self.settings, self.enc = BrowserSettings(), EncoderSettings()
        self.queue: list[str] = []
        self.is_processing = False
        self.results: list[dict[str, Any]] = []
        self.finished = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()

    def add(self, url: str) -> None:
        self.queue.append(url)
        self._kick()

    def _kick(self) -> None:
        task = asyncio.get_running_loop().create_task(self.process())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def process(self) -> None:
        if self.is_processing or not self.queue:
            return
        self.is_processing = True
        url = self.queue.pop(0)
        try:
            self.results.append({"ok": True, "bytes": await self.grab(url)})
        except Exception as exc:  # the old queue logged and moved on
            self.results.append({"ok": False, "error": repr(exc)[:200]})
        finally:
            self.is_processing = False
            if len(self.results) == self.total:
                self.finished.set()
            asyncio.get_running_loop().call_later(BETWEEN_JOBS_S, self._kick)

    async def grab(self, url: str) -> int:
        settings, enc = self.settings, self.enc
        await self.page.goto(url, timeout=settings.navigation_timeout_s * 1000)
        await self.page.wait_for_function(settings.ready_expression,
                                          timeout=settings.ready_timeout_s * 1000)
        frames = Path(tempfile.mkdtemp(prefix="frames-", dir=self.workdir))
        try:
            for i in range(FRAMES):
                await self.page.screenshot(path=str(frames / f"frame-{i:03d}.png"))
                await asyncio.sleep(1 / FPS)
            out = frames / "out.webp"
            ffmpeg = await asyncio.create_subprocess_exec(
                "ffmpeg", "-y", "-loglevel", "error", "-framerate", str(FPS),
                "-i", str(frames / "frame-%03d.png"), "-c:v", "libwebp_anim",
                "-quality", str(enc.webp_quality), "-lossless", "0",
                "-compression_level", str(enc.webp_compression_level), "-loop", "0", str(out),
                stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, err = await ffmpeg.communicate()
            if ffmpeg.returncode != 0:
                raise RuntimeError(f"ffmpeg exited {ffmpeg.returncode}: {err.decode()[-200:]}")
            return out.stat().st_size
        finally:
            shutil.rmtree(frames, ignore_errors=True)


async def baseline_worker() -> None:
    """Reads one JSON list of URLs a line, answers one JSON line when the queue has done them."""
    from playwright.async_api import async_playwright

    settings = BrowserSettings()
    loop = asyncio.get_running_loop()
    workdir = Path(tempfile.mkdtemp(prefix="oven-baseline-"))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=settings.executable_path,
                                           args=settings.args, headless=True)
        try:
            page = await browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            print("ready", flush=True)
            while line := await loop.run_in_executor(None, sys.stdin.readline):
                urls = json.loads(line)
                queue = OldQueue(page, workdir, len(urls))
                for url in urls:
                    queue.add(url)
                await queue.finished.wait()
                await page.goto("about:blank")  # no animation left running between rounds
                print(json.dumps(queue.results), flush=True)
        finally:
            await browser.close()
            shutil.rmtree(workdir, ignore_errors=True)


class Baseline:
    """The baseline worker process, driven over its stdin/stdout."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--baseline-worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            self.proc.kill()
            self.proc.wait(10)
            raise SystemExit("the baseline worker did not start")
        self.descendants: set[int] = set()
        self.remember_children()

    def remember_children(self) -> None:
        """Every descendant seen, so stop() can prove each one is gone."""
        with contextlib.suppress(psutil.NoSuchProcess):
            kids = psutil.Process(self.proc.pid).children(recursive=True)
            self.descendants.update(p.pid for p in kids)

    def run(self, urls: list[str]) -> list[dict[str, Any]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(urls) + "\n")
        self.proc.stdin.flush()
        answer: list[dict[str, Any]] = json.loads(self.proc.stdout.readline())
        return answer

    def stop(self) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()  # end of input: the worker closes Chromium and exits
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            for pid in [self.proc.pid, *self.descendants]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    psutil.Process(pid).kill()
            self.proc.wait(10)
        deadline = time.monotonic() + 10
        while left := [p for p in self.descendants if alive(p)]:
            if time.monotonic() > deadline:
                raise SystemExit(f"processes left behind by the baseline: {left}")
            time.sleep(0.1)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# --- measuring -------------------------------------------------------------------------------

def figures(usage: Usage, wall: float, grabs: int, errors: list[str]) -> dict[str, Any]:
    return {
        "wall_s": wall,
        "cpu_s_per_grab": usage.total_cpu_s / grabs,
        "cpu_s_per_grab_by_component": {k: v / grabs for k, v in usage.cpu_s.items()},
        "peak_tree_pss_mb": usage.peak_pss_bytes / 2**20,
        "peak_tree_pss_mb_by_component": {
            k: v / 2**20 for k, v in usage.peak_pss_bytes_by_component.items()},
        "peak_tree_rss_mb": usage.peak_rss_bytes / 2**20,
        "sampler_cpu_s": usage.sampler_cpu_s,
        "failed": len(errors),
        "errors": sorted(set(errors))[:3],
    }


def baseline_round(baseline: Baseline, pieces_url: str, tag: str, grabs: int) -> dict[str, Any]:
    urls = [f"{pieces_url}/anim/?bench={tag}-{i}" for i in range(grabs)]
    sampler = TreeSampler(baseline.proc.pid).start()
    t0 = time.monotonic()
    results = baseline.run(urls)
    wall = time.monotonic() - t0
    out = figures(sampler.stop(), wall, grabs, [r["error"] for r in results if not r["ok"]])
    baseline.remember_children()
    sizes = [r["bytes"] for r in results if r["ok"]]
    out["output_kb_mean"] = statistics.mean(sizes) / 1024 if sizes else 0.0
    return out


async def oven_phase(oven: OvenProcess, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    assert oven.proc is not None
    sampler = TreeSampler(oven.proc.pid).start()
    async with httpx.AsyncClient(base_url=oven.url, timeout=120) as client:
        t0 = time.monotonic()
        answers = await asyncio.gather(*(client.post("/grabs", json=b) for b in bodies))
        # A refused submission (e.g. 429 when the estimated wait passes the deadline) fails.
        errors = [f"{a.status_code} {a.text[:120]}" for a in answers if a.status_code >= 400]
        pending = {a.json()["id"] for a in answers if a.status_code < 400}
        timings: list[dict[str, float]] = []
        while pending:
            # Long polls, as a client waiting for its grabs would: a poll every 0.1 s per job
            # would cost oven's HTTP loop more CPU than the grabs' own Python work.
            views = await asyncio.gather(*(client.get(f"/grabs/{i}", params={"wait": 60})
                                           for i in pending))
            for view in (v.json() for v in views):
                if view["state"] in ("complete", "failed", "cancelled"):
                    pending.discard(view["id"])
                    if view["state"] != "complete":
                        errors.append(f"{view['state']}: {str(view.get('error'))[:120]}")
                    else:
                        timings.append(view.get("timings") or {})
        wall = time.monotonic() - t0
    out = figures(sampler.stop(), wall, len(bodies), errors)
    # Where a grab's wall goes, stage by stage (the job's own timings): what bounds a contender
    # that is not CPU-bound.
    stages = sorted({k for t in timings for k in t})
    out["stage_s_median"] = {k: round(statistics.median(t[k] for t in timings if k in t), 3)
                             for k in stages}
    return out


TARGET = {"kind": "url"}  # --target: how oven is told what to grab


def oven_bodies(piece: str, tag: str, grabs: int, **extra: Any) -> list[dict[str, Any]]:
    if TARGET["kind"] == "piece" and piece == "anim":
        # Piece names, through a url_template that maps every name onto the anim piece with
        # the name as its query: the path clients of named pieces take (no request guard).
        return [{"piece": f"b{tag}-{i}"[:64].lower(), "width": WIDTH, "height": HEIGHT,
                 **extra} for i in range(grabs)]
    return [{"url": f"{ORIGIN}/{piece}/?bench={tag}-{i}", "width": WIDTH, "height": HEIGHT,
             **extra} for i in range(grabs)]


CONTENDERS = ("baseline", "oven_real", "oven_virtual", "oven_stills")


def one_round(shared: Path, config: dict[str, dict[str, Any]], pieces_url: str, grabs: int,
              only: tuple[str, ...] = CONTENDERS) -> dict[str, dict[str, Any]]:
    """One round: each contender started, warmed and measured alone on the machine, then
    stopped. Alive beside another, a Chromium shares its libraries' pages (ANGLE, SwiftShader,
    the C++ runtime) with it, and each tree's PSS reads lower than the tree alone costs."""
    tag = uuid.uuid4().hex[:8]
    anim = {"format": "webp", "frames": FRAMES, "fps": FPS}
    out: dict[str, dict[str, Any]] = {}
    if "baseline" in only:
        baseline = Baseline()
        try:
            if not all(r["ok"] for r in baseline.run([f"{pieces_url}/anim/?bench=warm"])):
                raise SystemExit("the baseline's warm-up grab failed")
            out["baseline"] = baseline_round(baseline, pieces_url, tag, grabs)
        finally:
            baseline.stop()
    oven = OvenProcess(shared, config=config)
    try:
        oven.start()
        warm(oven, tag)
        for clock in ("real", "virtual"):
            if f"oven_{clock}" in only:
                bodies = oven_bodies("anim", f"{tag}-{clock}", grabs, clock=clock, **anim)
                out[f"oven_{clock}"] = asyncio.run(oven_phase(oven, bodies))
                if "baseline" in out:
                    out[f"oven_{clock}"]["speedup"] = (out["baseline"]["wall_s"]
                                                       / out[f"oven_{clock}"]["wall_s"])
        if "oven_stills" in only:
            stills = asyncio.run(oven_phase(oven, oven_bodies("still", tag, grabs,
                                                              format="png")))
            stills["stills_per_s"] = grabs / stills["wall_s"]
            out["oven_stills"] = stills
    finally:
        oven.stop()
    return out


def warm(oven: OvenProcess, tag: str) -> None:
    """One grab of each kind, each new to this oven (a cached answer would warm nothing)."""
    bodies = [*oven_bodies("anim", f"w{tag}-real", 1, format="webp", frames=FRAMES, fps=FPS),
              *oven_bodies("anim", f"w{tag}-virtual", 1, format="webp", frames=FRAMES, fps=FPS,
                           clock="virtual"),
              *oven_bodies("still", f"w{tag}", 1, format="png")]
    result = asyncio.run(oven_phase(oven, bodies))
    if result["failed"]:
        raise SystemExit(f"oven warm-up failed: {result['errors']}\n{oven.log[-2000:]}")


def median_of(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for key, value in rounds[0].items():
        if isinstance(value, dict):
            names = sorted({k for r in rounds for k in r[key]})
            summary[key] = {k: round(statistics.median(r[key].get(k, 0.0) for r in rounds), 3)
                            for k in names}
        elif key == "failed":
            summary[key] = sum(r[key] for r in rounds)
        elif key == "errors":
            summary[key] = sorted({e for r in rounds for e in r[key]})[:3]
        else:
            summary[key] = round(statistics.median(r[key] for r in rounds), 3)
    return summary


def rounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return round(value, 3) if isinstance(value, float) else value


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--grabs", type=int, default=19)
    parser.add_argument("--target", choices=("url", "piece"), default="url",
                        help="oven's animated grabs by raw URL (each page request checked by "
                        "the request guard) or by piece name (the guard is off)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=JSON",
                        help="an oven setting for this run, e.g. browser.pace_frames=false")
    parser.add_argument("--only", action="append", choices=CONTENDERS, metavar="CONTENDER",
                        help="run only this contender (repeatable; default: all of "
                        f"{', '.join(CONTENDERS)}); speed-ups need the baseline")
    parser.add_argument("--baseline-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    TARGET["kind"] = args.target
    only = tuple(args.only or CONTENDERS)
    if args.baseline_worker:
        asyncio.run(baseline_worker())
        return
    load_before = os.getloadavg()
    handler = functools.partial(Quiet, directory=str(pieces_dir()))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pieces_url = f"http://127.0.0.1:{server.server_address[1]}"
    with tempfile.TemporaryDirectory(prefix="oven-bench-") as tmp, contextlib.ExitStack() as stack:
        stack.callback(server.server_close)
        stack.callback(server.shutdown)
        shared = Path(tmp)
        config: dict[str, dict[str, Any]] = {
            "pieces": {"allowed_origins": [ORIGIN], "allow_private": True,
                       "url_template": f"{ORIGIN}/anim/?bench={{piece}}"},
            "store": {"sqlite_path": str(shared / "oven.db")},
            "storage": {"local_dir": str(shared / "results")},
        }
        for setting in args.set:
            name, _, value = setting.partition("=")
            section, _, key = name.partition(".")
            config.setdefault(section, {})[key] = json.loads(value)
        rounds = [one_round(shared, config, pieces_url, args.grabs, only)
                  for _ in range(args.rounds)]
    summary = {
        "bench": "side_by_side", "grabs": args.grabs, "rounds": args.rounds,
        "target": args.target, "settings": args.set, "contenders": list(only),
        "frames": FRAMES, "fps": FPS, "size": f"{WIDTH}x{HEIGHT}", "cores": os.cpu_count(),
        "nice": {"baseline": os.nice(0), "oven_captures": BrowserSettings().nice},
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        **{name: median_of([r[name] for r in rounds]) for name in rounds[0]},
        "each_round": [rounded(r) for r in rounds],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
