"""PTY benchmark: a 10 MiB paste over the WebSocket while another session types.

Reports paste MB/s into a raw-mode consumer, the service's RSS growth during the paste, and
keystroke echo latency (p50/p99) in a second session (cooked `cat`, kernel echo) meanwhile.
Targets (issue 8): >= 20 MB/s, <= 16 MiB growth, <= 50 ms p99. Prints one JSON line.

    .venv/bin/python bench/pty.py
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from oven_process import OvenProcess
from websockets.sync.client import connect

TOKEN = "bench-token"
PASTE = 10 * 1024 * 1024
CONSUMER = ("import os,sys; n=int(sys.argv[1]); got=0\n"
            "while got < n:\n"
            "    chunk = os.read(0, 1 << 16)\n"
            "    if not chunk: break\n"
            "    got += len(chunk)\n")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="oven-bench-pty-") as tmp:
        oven = OvenProcess(Path(tmp), config={
            "pty": {"enabled": True, "token": TOKEN},
            "pty.profiles.consumer": {"command": [sys.executable, "-c", CONSUMER, str(PASTE)],
                                      "raw": True},
            "pty.profiles.echo": {"command": ["cat"]},
        }).start()
        try:
            assert oven.proc is not None
            service = psutil.Process(oven.proc.pid)
            auth = {"Authorization": f"Bearer {TOKEN}"}

            def session(profile: str) -> str:
                r = httpx.post(f"{oven.url}/pty/sessions", json={"profile": profile},
                               headers=auth, timeout=20)
                r.raise_for_status()
                return f"ws://127.0.0.1:{oven.port}{r.json()['ws_url']}?token={TOKEN}"

            paste_url, echo_url = session("consumer"), session("echo")
            latencies: list[float] = []
            pasting = threading.Event()
            done = threading.Event()

            def type_keys() -> None:
                with connect(echo_url, max_size=None) as ws:
                    rendered = 0
                    pasting.wait(10)
                    while not done.is_set():
                        t0 = time.perf_counter()
                        ws.send(b"k")
                        while True:  # read until the echoed key arrives
                            message = ws.recv(timeout=5)
                            if isinstance(message, bytes):
                                rendered += len(message)
                                ws.send(json.dumps({"type": "ack", "bytes": rendered}))
                                if b"k" in message:
                                    break
                        latencies.append(time.perf_counter() - t0)
                        time.sleep(0.01)

            typist = threading.Thread(target=type_keys, daemon=True)
            typist.start()
            peak_rss, base_rss = 0, service.memory_info().rss
            data = os.urandom(PASTE)
            with connect(paste_url, max_size=None) as ws:
                exit_seen = threading.Event()

                def watch() -> None:
                    for message in ws:
                        if isinstance(message, str) and json.loads(message)["type"] == "exit":
                            exit_seen.set()
                            return

                threading.Thread(target=watch, daemon=True).start()
                pasting.set()
                t0 = time.perf_counter()
                for start in range(0, PASTE, 65536):
                    ws.send(data[start:start + 65536])
                    if start % (1 << 20) == 0:
                        peak_rss = max(peak_rss, service.memory_info().rss)
                exit_seen.wait(60)
                elapsed = time.perf_counter() - t0
            peak_rss = max(peak_rss, service.memory_info().rss)
            done.set()
            typist.join(10)
        finally:
            oven.stop()
    ordered = sorted(latencies)
    print(json.dumps({
        "bench": "pty",
        "paste_mb_per_s": round(PASTE / elapsed / 1e6, 1),
        "service_rss_growth_mib": round((peak_rss - base_rss) / 2**20, 1),
        "echo_p50_ms": round(statistics.median(ordered) * 1000, 2) if ordered else None,
        "echo_p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 2)
        if ordered else None,
        "echo_samples": len(ordered),
    }))


if __name__ == "__main__":
    main()
