"""`oven mem -- COMMAND ...`: the true memory peak of a command's whole process tree, by group."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import tomllib
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import psutil

from ._cgroup import ChildCgroup
from ._report import Recorder, build_result, parse_size, result_line, summary, write_result
from ._sampler import TreeSampler
from ._settings import MemorySettings

EXIT_OK, EXIT_USAGE, EXIT_OVER_BUDGET, EXIT_CANNOT_RUN = 0, 2, 3, 127
STAGE_MARK = re.compile(rb"\[OVEN-MEM STAGE\][ \t]*(.*?)\s*$")
# Up to this many processes every tick reads every PSS; bigger trees (Chromium) use the rotation.
FULL_PSS_UP_TO = 8
# The command itself when it is oven (`oven serve`, `python -m oven ...`); tried first.
HARNESS_GROUPS = [("oven", r"^(\S*/)?oven(\s|$)|(^|\s)-m\s+oven(\s|$)")]
_GROUP_NAME = re.compile(r"^[A-Za-z][\w-]{0,31}$")
_PR_SET_CHILD_SUBREAPER = 36

RESULT_DOC = """\
stage markers: a line `[OVEN-MEM STAGE] <name>` on COMMAND's stdout or stderr (passed through
unchanged) starts stage <name>; peaks are reported per stage as well.

output: a summary on stderr, one line `[OVEN-MEM RESULT] {json}` on stdout, and
result-LABEL.json + timeline-LABEL.csv (t_s,total_rss,total_pss,<group>_pss...,stage) in --out.
result keys: label, command, exit_status, duration_s, headline_peak_bytes, headline_source
("cgroup.memory.peak" of a dedicated cgroup v2 child group when the host allows one, else
"sampled_pss": the highest sampled PSS sum), sampled_peak_pss_bytes, sampled_peak_rss_bytes,
peak_at_s, peak_stage, groups {group: peak_pss_bytes}, stages {name: {peak_pss_bytes,
peak_rss_bytes, start_s, end_s, samples, groups}}, top_processes [{pid, group, pss_bytes,
rss_bytes, command}] at the overall PSS peak, budget_bytes, over_budget, samples, interval_ms,
leftovers_killed (pids still running after COMMAND exited, SIGKILLed), files.

exit status: COMMAND's when it fails (128+N when killed by signal N), 3 when the peak exceeds
--budget, 2 on usage errors, 127 when COMMAND cannot be started, else 0.
"""


def add_parser(sub: Any) -> None:
    mem = sub.add_parser(
        "mem",
        help="run a command and report the true memory peak of its process tree",
        description="Run COMMAND, sample its whole process tree (RSS every tick, PSS) and "
                    "report its memory peak overall, by group and by stage.",
        epilog=RESULT_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mem.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG ...]")
    mem.add_argument("--interval-ms", type=int, default=250, help="sampling period (default 250)")
    mem.add_argument("--label", help="names the output files (default: COMMAND-TIMESTAMP)")
    mem.add_argument("--out", default="var/mem", help="directory for result/timeline files")
    mem.add_argument("--budget", help="exit 3 when the peak exceeds this size (500M, 1.5G)")
    mem.add_argument("--rules", help="TOML/JSON file of pattern -> group rules, tried before "
                                     "the default ones")
    mem.add_argument("--json-only", action="store_true",
                     help="no summary on stderr: only the result line (COMMAND's own output "
                          "still passes through)")
    mem.set_defaults(func=cmd_mem)


class UsageError(Exception):
    pass


def load_groups(path: Path) -> list[tuple[str, str]]:
    """(group, pattern) rules from a TOML/JSON file: a table of `pattern = group`, or
    `rules = [{pattern = ..., group = ...}, ...]`. Order is kept; the first match wins."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read rules file {path}: {exc.strerror}") from None
    try:
        data: Any = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"rules file {path} does not parse: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("rules"), list):
        pairs = [(r.get("group", r.get("component")), r.get("pattern"))
                 for r in data["rules"] if isinstance(r, dict)]
    elif isinstance(data, dict):
        pairs = [(group, pattern) for pattern, group in data.items()]
    else:
        raise UsageError(f"rules file {path}: expected a table of pattern = group")
    groups: list[tuple[str, str]] = []
    for group, pattern in pairs:
        if not isinstance(group, str) or not _GROUP_NAME.match(group):
            raise UsageError(f"rules file {path}: bad group name {group!r}")
        if not isinstance(pattern, str):
            raise UsageError(f"rules file {path}: bad pattern {pattern!r} for group {group}")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise UsageError(f"rules file {path}: pattern {pattern!r}: {exc}") from None
        groups.append((group, pattern))
    return groups


def _default_label(command: list[str]) -> str:
    stem = Path(command[0]).name or "command"
    return f"{stem}-{datetime.now():%Y%m%d-%H%M%S}"


def _safe_label(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._") or "run"


def cmd_mem(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    try:
        if not command:
            raise UsageError("no COMMAND given: oven mem [OPTIONS] -- COMMAND [ARG ...]")
        budget = parse_size(args.budget) if args.budget is not None else None
        if args.interval_ms < 20:
            raise UsageError("--interval-ms must be at least 20")
        groups = load_groups(Path(args.rules)) if args.rules else []
    except (UsageError, ValueError) as exc:
        print(f"oven mem: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run = MemRun(
        command, label=_safe_label(args.label or _default_label(command)), out=out,
        interval_s=args.interval_ms / 1000, budget=budget, groups=HARNESS_GROUPS + groups,
    )
    result = run.execute()
    if result is None:
        return EXIT_CANNOT_RUN
    if not args.json_only:
        print(summary(result), file=sys.stderr, flush=True)
    print(result_line(result), flush=True)
    if result["exit_status"] != 0:
        return int(result["exit_status"])
    return EXIT_OVER_BUDGET if result["over_budget"] else EXIT_OK


def _become_subreaper() -> None:
    # Orphans (double forks, Chromium's crashpad handler) are re-parented to us instead of
    # init, so they stay in the measured tree and are killed and reaped at the end.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _pump(stream: IO[bytes], sink: IO[bytes], markers: queue.SimpleQueue[tuple[float, str]],
          wake: threading.Event) -> None:
    """Copy COMMAND's output through unchanged, noting stage markers as they pass."""
    for line in iter(stream.readline, b""):
        with contextlib.suppress(OSError, ValueError):
            sink.write(line)
            sink.flush()
        if (match := STAGE_MARK.search(line)) is not None:
            markers.put((time.monotonic(), match.group(1).decode("utf-8", "replace")))
            wake.set()  # sample at once: the stage boundary is what the peaks are split on
    stream.close()


def _drain(markers: queue.SimpleQueue[tuple[float, str]]) -> list[tuple[float, str]]:
    out = []
    while not markers.empty():
        out.append(markers.get_nowait())
    return out


class MemRun:
    """One `oven mem` run: start COMMAND, sample its tree until it exits, clean up, report."""

    def __init__(self, command: list[str], *, label: str, out: Path, interval_s: float,
                 budget: int | None, groups: list[tuple[str, str]]) -> None:
        self.command = command
        self.label = label
        self.out = out
        self.interval_s = interval_s
        self.budget = budget
        self.groups = groups

    def execute(self) -> dict[str, Any] | None:
        _become_subreaper()
        cgroup = ChildCgroup.create(f"oven-mem-{os.getpid()}")
        argv = self.command
        if cgroup is not None:
            # The child joins the dedicated cgroup before exec: `echo 0` moves the writer itself.
            argv = ["/bin/sh", "-c", 'echo 0 > "$0" && exec "$@"', str(cgroup.procs_file),
                    *self.command]
        try:
            proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                # Its own session and group: one killpg reaches everything it started, and a
                # Ctrl-C on our terminal reaches it only through our forwarding below.
                start_new_session=True,
            )
        except OSError as exc:
            print(f"oven mem: cannot run {self.command[0]!r}: {exc.strerror}", file=sys.stderr)
            if cgroup is not None:
                cgroup.remove()
            return None
        try:
            return self._watch(proc, cgroup)
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def _watch(self, proc: subprocess.Popen[bytes], cgroup: ChildCgroup | None) -> dict[str, Any]:
        started = time.monotonic()
        wake = threading.Event()
        markers: queue.SimpleQueue[tuple[float, str]] = queue.SimpleQueue()
        assert proc.stdout is not None and proc.stderr is not None
        pumps = [
            threading.Thread(target=_pump, args=(stream, sink, markers, wake), daemon=True,
                             name=f"oven-mem-{name}")
            for name, stream, sink in (("stdout", proc.stdout, sys.stdout.buffer),
                                       ("stderr", proc.stderr, sys.stderr.buffer))
        ]
        ended: list[float] = []

        def wait_exit() -> None:
            proc.wait()
            ended.append(time.monotonic())
            wake.set()  # report the exit now, not at the next tick

        for thread in [*pumps, threading.Thread(target=wait_exit, daemon=True)]:
            thread.start()
        previous = {sig: signal.signal(sig, self._forwarder(proc))
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        # Rooted at ourselves (a subreaper, not measured) so re-parented orphans stay in view.
        sampler = TreeSampler(
            os.getpid(),
            MemorySettings(pss_interval_s=max(0.25, self.interval_s)),
            groups=self.groups, root_component=None, include_root=False,
        )
        timeline_path = self.out / f"timeline-{self.label}.csv"
        with timeline_path.open("w", newline="") as timeline:
            recorder = Recorder(sampler.components, started, timeline)
            try:
                self._loop(proc, sampler, recorder, markers, wake)
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            end = ended[0] if ended else time.monotonic()
            leftovers = _kill_leftovers(proc.pid)
            for thread in pumps:
                thread.join(timeout=5)  # EOF comes once every writer is dead
            for at, name in _drain(markers):  # printed after the last sample
                recorder.start_stage(name, at - started)
            recorder.finish(end - started)
        cgroup_peak = None
        if cgroup is not None:
            cgroup_peak = cgroup.peak()
            cgroup.remove()
        status = proc.returncode
        result_path = self.out / f"result-{self.label}.json"
        result = build_result(
            label=self.label, command=self.command,
            exit_status=status if status >= 0 else 128 - status,
            duration_s=end - started, recorder=recorder, cgroup_peak=cgroup_peak,
            budget=self.budget, interval_ms=round(self.interval_s * 1000),
            files={"result": str(result_path), "timeline": str(timeline_path)},
            leftovers_killed=leftovers,
        )
        write_result(result_path, result)
        return result

    def _loop(self, proc: subprocess.Popen[bytes], sampler: TreeSampler, recorder: Recorder,
              markers: queue.SimpleQueue[tuple[float, str]], wake: threading.Event) -> None:
        processes = 0
        next_at = time.monotonic()
        while True:
            wake.clear()
            exited = proc.poll() is not None
            sample = sampler.sample(full_pss=processes <= FULL_PSS_UP_TO)
            processes = len(sample.processes)
            if not (exited and processes == 0):
                recorder.add(sample, _drain(markers))
            if exited:
                return
            next_at += self.interval_s
            now = time.monotonic()
            if next_at < now:  # fell behind (a slow PSS sweep): skip, do not burst
                next_at = now + self.interval_s
            wake.wait(next_at - now)

    @staticmethod
    def _forwarder(proc: subprocess.Popen[bytes]) -> Any:
        def forward(signum: int, frame: Any) -> None:
            # COMMAND has its own session, so our terminal's Ctrl-C does not reach it by itself.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signum)
        return forward


def _kill_leftovers(command_pid: int) -> list[int]:
    """SIGKILL whatever COMMAND left running (its group, and any descendant of ours), reap all."""
    procs = psutil.Process().children(recursive=True)
    running = []
    for child in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.status() != psutil.STATUS_ZOMBIE:
                running.append(child)
    # The group kill also reaches members that are not our descendants any more (none should
    # be: we are their subreaper), the per-process kill those that left the group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(command_pid, signal.SIGKILL)
    killed: list[int] = []
    for child in running:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
            killed.append(child.pid)
    psutil.wait_procs(procs, timeout=5)
    # Orphans re-parented to us are our children now: reap them (COMMAND is reaped already).
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
    return killed
