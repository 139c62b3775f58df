"""TreeSampler on real processes: all found, components named, PSS rotated, CPU counted."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from oven.memory import MemorySettings, TreeSample, TreeSampler
from oven.memory._sampler import read_cmdline

CHROMIUM = "/usr/bin/chromium"


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    # Each child leads its own group: one SIGKILL reaches everything it started.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@pytest.fixture
def spawn(token: str) -> Iterator[Callable[[list[str]], subprocess.Popen[bytes]]]:
    # Depends on `token` so its no-leftover check runs after these groups are killed.
    started: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        _stop_group(proc)


def _sample_until(sampler: TreeSampler, done: Callable[[TreeSample], bool],
                  timeout: float = 20) -> TreeSample:
    deadline = time.monotonic() + timeout
    while True:
        sample = sampler.sample()
        if done(sample) or time.monotonic() > deadline:
            return sample
        time.sleep(0.05)  # processes start asynchronously; poll with a bound


def _descendants(pid: int) -> set[int]:
    return {p.pid for p in psutil.Process(pid).children(recursive=True)
            if p.status() != psutil.STATUS_ZOMBIE}


def test_every_process_of_a_shell_with_three_children_is_found(spawn, token: str) -> None:
    proc = spawn(["sh", "-c", "sleep 30 & sleep 30 & sleep 30 & wait", token])
    sampler = TreeSampler(proc.pid, MemorySettings())
    sample = _sample_until(
        sampler, lambda s: sum(p.command.startswith("sleep") for p in s.processes) == 3)
    pids = {p.pid for p in sample.processes}
    assert pids == {proc.pid} | _descendants(proc.pid)
    assert len(pids) == 4
    by_pid = {p.pid: p for p in sample.processes}
    assert by_pid[proc.pid].component == "oven"  # the root is oven by default
    assert all(p.component == "other" for p in sample.processes if p.pid != proc.pid)
    assert all(p.rss > 0 for p in sample.processes)
    assert sample.total_rss == sum(p.rss for p in sample.processes)
    assert set(sample.rss_by_component) >= {"oven", "browser", "renderer", "driver",
                                            "encoder", "pty", "other"}


def test_python_multiprocessing_children_are_found_and_their_pss_is_read(
    spawn, token: str
) -> None:
    code = ("import multiprocessing as m, time\n"
            "def f(): time.sleep(30)\n"
            "if __name__ == '__main__':\n"
            "    ps = [m.Process(target=f) for _ in range(3)]\n"
            "    [p.start() for p in ps]; [p.join() for p in ps]\n")
    proc = spawn([sys.executable, "-c", code, token])
    sampler = TreeSampler(proc.pid, MemorySettings(pss_per_tick=2), root_component=None)
    sample = _sample_until(sampler, lambda s: len(s.processes) >= 4
                           and not s.pss_estimated_pids)
    assert {p.pid for p in sample.processes} == {proc.pid} | _descendants(proc.pid)
    assert len(sample.processes) >= 4
    assert all(p.pss is not None and 0 < p.pss <= p.rss for p in sample.processes)
    assert sample.total_pss < sample.total_rss  # forked children share pages


def test_pss_is_read_in_rotation_and_estimated_from_rss_until_then(spawn, token: str) -> None:
    proc = spawn(["sh", "-c", "for i in 1 2 3 4 5 6 7; do sleep 30 & done; wait", token])
    settings = MemorySettings(pss_per_tick=2, pss_interval_s=60)
    sampler = TreeSampler(proc.pid, settings)
    # Every child must have exec'd `sleep` first: one still a forked shell when `first` is read
    # is read again as a new program after its exec, and stays estimated (1 run of 3 at load 12).
    _sample_until(TreeSampler(proc.pid, settings), lambda s: len(s.processes) == 8 and sum(
        p.command.startswith("sleep") for p in s.processes) == 7)
    first = sampler.sample()
    assert len(first.processes) == 8
    assert len([p for p in first.processes if p.pss is not None]) == 2
    assert len(first.pss_estimated_pids) == 6
    estimated = {p.pid: p.rss for p in first.processes if p.pid in first.pss_estimated_pids}
    read = sum(p.pss or 0 for p in first.processes)
    assert first.total_pss == read + sum(estimated.values())
    for _ in range(3):
        last = sampler.sample()
    assert last.pss_estimated_pids == []
    full = sampler.sample(full_pss=True)
    assert full.pss_estimated_pids == [] and all(p.pss for p in full.processes)


def test_cached_pss_is_dropped_when_a_process_goes_away(spawn, token: str) -> None:
    proc = spawn(["sh", "-c", "sleep 0.5 & sleep 30 & wait", token])
    sampler = TreeSampler(proc.pid, MemorySettings())
    _sample_until(sampler, lambda s: len(s.processes) == 3)
    sampler.sample(full_pss=True)
    sample = _sample_until(sampler, lambda s: len(s.processes) == 2, timeout=5)
    assert len(sample.processes) == 2
    assert len(sampler._known) == 2  # white-box: the cache follows the tree


def test_extra_pids_override_the_rules_for_themselves_and_their_children(
    spawn, token: str
) -> None:
    root = spawn(["sh", "-c", "sleep 30 & wait", token])
    owned = spawn(["sh", "-c", "sleep 30 & wait", token])
    sampler = TreeSampler(root.pid, MemorySettings(), extra=lambda: {owned.pid: "pty"})
    sample = _sample_until(sampler, lambda s: len(s.processes) == 4)
    components = {p.pid: p.component for p in sample.processes}
    assert components[root.pid] == "oven" and components[owned.pid] == "pty"
    # The owned shell's sleep inherits "pty"; the root's sleep goes by the rules.
    assert sorted(components.values()) == ["other", "oven", "pty", "pty"]
    assert sample.rss_by_component["pty"] > 0


def test_default_rules_name_chromium_playwright_and_ffmpeg_command_lines() -> None:
    sampler = TreeSampler(1, MemorySettings())
    lib = "/usr/lib/chromium/chromium"
    cases = {
        f"{lib} --type=renderer --lang=en-US": "renderer",
        f"{lib} --headless=new --oven-owner=1-ab about:blank": "browser",
        f"{lib} --type=gpu-process --no-sandbox": "browser",
        f"{lib} --type=utility --utility-sub-type=network.mojom.NetworkService": "browser",
        f"{lib} --type=zygote --no-zygote-sandbox": "browser",
        "/usr/lib/chromium/chrome_crashpad_handler --monitor-self": "browser",
        "/ms-playwright/chromium_headless_shell-1200/chrome-linux/headless_shell --type=renderer":
            "renderer",
        "/venv/lib/python3.11/site-packages/playwright/driver/node "
        "/venv/lib/python3.11/site-packages/playwright/driver/package/cli.js run-driver": "driver",
        "/usr/bin/ffmpeg -hide_banner -f image2pipe -i - out.webp": "encoder",
        "python -m pytest tests/encode/test_ffmpeg.py": "other",
        "bash -l": "other",
    }
    for command, component in cases.items():
        assert sampler.classify(2, command.split()) == component, command
    assert sampler.classify(1, ["anything"]) == "oven"


def test_headless_chromium_is_split_into_browser_and_renderer(
    spawn, token: str, tmp_path: Path
) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    proc = spawn([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                  "--disable-dev-shm-usage", "--disable-crashpad-for-testing",
                  f"--oven-owner=test-x-{token}", f"--user-data-dir={tmp_path}", "about:blank"])
    sampler = TreeSampler(proc.pid, MemorySettings(), root_component=None)
    # Debian's /usr/bin/chromium is a shell script that runs a helper or two, then execs.
    sample = _sample_until(
        sampler, lambda s: s.rss_by_component["renderer"] > 0 and len(s.processes) >= 5
        and s.rss_by_component["other"] == 0)
    assert {p.component for p in sample.processes} == {"browser", "renderer"}, sample.processes
    main = next(p for p in sample.processes if p.pid == proc.pid)
    assert main.component == "browser"
    assert f"--oven-owner=test-x-{token}" in read_cmdline(main.pid)
    full = sampler.sample(full_pss=True)
    assert full.pss_by_component["browser"] > 0 and full.pss_by_component["renderer"] > 0
    # Shared pages are counted once in PSS, in every process in RSS.
    assert full.total_pss < full.total_rss
    assert sampler.cpu_seconds > 0


def test_cpu_seconds_grow_with_every_sample(spawn, token: str) -> None:
    proc = spawn(["sh", "-c", "sleep 30", token])
    sampler = TreeSampler(proc.pid, MemorySettings())
    assert sampler.cpu_seconds == 0
    sampler.sample(full_pss=True)
    after_one = sampler.cpu_seconds
    for _ in range(50):
        sampler.sample(full_pss=True)
    assert 0 < after_one < sampler.cpu_seconds


GROWER = """
import signal, subprocess, sys, time
held = []
signal.signal(signal.SIGUSR1, lambda *_: held.append(b"x" * (24 << 20)))
child = subprocess.Popen(["sleep", "60"])
while True:
    time.sleep(1)
"""


def test_a_full_sweep_reads_pss_again_only_where_it_may_have_moved(spawn, token: str) -> None:
    proc = spawn([sys.executable, "-c", GROWER, token])
    sampler = TreeSampler(proc.pid, MemorySettings())
    _sample_until(sampler, lambda s: len(s.processes) == 2)
    child = next(p for p in _descendants(proc.pid))

    def read_at() -> dict[int, float]:
        return {pid: known.pss_read_at for pid, known in sampler._known.items()}  # white-box

    sampler.sample(full_pss=True)
    first = read_at()
    sampler.sample(full_pss=True)
    assert read_at() == first  # a steady tree: no smaps_rollup read again

    os.kill(proc.pid, signal.SIGUSR1)  # the root holds 24 MB more
    _sample_until(sampler, lambda s: next(p.rss for p in s.processes if p.pid == proc.pid)
                  > sampler._known[proc.pid].rss_at_pss + (20 << 20))
    grown = sampler.sample(full_pss=True)
    assert read_at()[proc.pid] > first[proc.pid] and read_at()[child] == first[child]
    assert (next(p.pss for p in grown.processes if p.pid == proc.pid) or 0) > 24 << 20

    sampler._known[child].pss_read_at -= 31  # older than the longest a PSS is kept
    sampler.sample(full_pss=True)
    assert read_at()[child] > first[child]

    steady = read_at()
    os.kill(child, signal.SIGKILL)  # one process goes: the split of shared pages moves
    _sample_until(sampler, lambda s: len(s.processes) == 1)
    sampler.sample(full_pss=True)
    assert read_at()[proc.pid] > steady[proc.pid]
