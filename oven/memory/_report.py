"""What `oven mem` keeps while a command runs (peaks by group and stage) and how it reports them."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ._sampler import ProcessFigure, TreeSample

RESULT_PREFIX = "[OVEN-MEM RESULT] "
TOP_PROCESSES = 10
_MIB = 1024 * 1024

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*$")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """Bytes from `500M`, `1.5G`, `64k`, `2GiB` or a plain byte count (units are binary)."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"not a size: {text!r} (use e.g. 500M, 1.5G, 2048K or bytes)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def mib(value: int | None) -> str:
    return "-" if value is None else f"{value / _MIB:.1f} MiB"


@dataclass
class _StagePeak:
    start_s: float
    end_s: float | None = None
    samples: int = 0
    peak_pss: int | None = None
    peak_rss: int | None = None
    groups: dict[str, int] = field(default_factory=dict)

    def add(self, sample: TreeSample) -> None:
        self.samples += 1
        self.peak_pss = max(self.peak_pss or 0, sample.total_pss)
        self.peak_rss = max(self.peak_rss or 0, sample.total_rss)
        for name, value in sample.pss_by_component.items():
            self.groups[name] = max(self.groups.get(name, 0), value)

    def as_json(self) -> dict[str, Any]:
        return {
            "peak_pss_bytes": self.peak_pss,
            "peak_rss_bytes": self.peak_rss,
            "start_s": round(self.start_s, 3),
            "end_s": None if self.end_s is None else round(self.end_s, 3),
            "samples": self.samples,
            "groups": {k: v for k, v in self.groups.items() if v},
        }


class Recorder:
    """Peaks over the ticks of one run; streams the timeline CSV as it goes."""

    def __init__(self, groups: tuple[str, ...], started: float, timeline: IO[str]) -> None:
        self.groups = groups
        self.started = started
        self.samples = 0
        self.peak_pss = 0
        self.peak_rss = 0
        self.peak_at_s: float | None = None
        self.peak_stage: str | None = None
        self.peak_processes: list[ProcessFigure] = []
        self.group_peaks = dict.fromkeys(groups, 0)
        self.stages: dict[str, _StagePeak] = {}
        self.stage: str | None = None
        self._csv = csv.writer(timeline)
        self._timeline = timeline
        self._csv.writerow(
            ["t_s", "total_rss", "total_pss", *(f"{g}_pss" for g in groups), "stage"]
        )

    def add(self, sample: TreeSample, markers: list[tuple[float, str]]) -> None:
        """One tick. `markers` are the stage lines seen since the last tick, oldest first: the
        sample (taken right after them) ends the running stage and opens each new one."""
        t_s = sample.at - self.started
        self.samples += 1
        if self.stage is not None:
            self.stages[self.stage].add(sample)
        for at, name in markers:
            self.start_stage(name, at - self.started)
            self.stages[name].add(sample)
        if sample.total_pss > self.peak_pss or self.peak_at_s is None:
            self.peak_pss = sample.total_pss
            self.peak_at_s = t_s
            self.peak_stage = self.stage
            self.peak_processes = list(sample.processes[:TOP_PROCESSES])
        self.peak_rss = max(self.peak_rss, sample.total_rss)
        for name, value in sample.pss_by_component.items():
            self.group_peaks[name] = max(self.group_peaks.get(name, 0), value)
        self._csv.writerow([
            f"{t_s:.3f}", sample.total_rss, sample.total_pss,
            *(sample.pss_by_component.get(g, 0) for g in self.groups), self.stage or "",
        ])
        self._timeline.flush()

    def start_stage(self, name: str, t_s: float) -> None:
        if self.stage is not None:
            self.stages[self.stage].end_s = t_s
        # A repeated name continues the same stage: its peak is over all its runs.
        stage = self.stages.setdefault(name, _StagePeak(start_s=t_s))
        stage.end_s = None
        self.stage = name

    def finish(self, t_s: float) -> None:
        if self.stage is not None and self.stages[self.stage].end_s is None:
            self.stages[self.stage].end_s = t_s


def build_result(
    *,
    label: str,
    command: list[str],
    exit_status: int,
    duration_s: float,
    recorder: Recorder,
    cgroup_peak: int | None,
    budget: int | None,
    interval_ms: int,
    files: dict[str, str],
    leftovers_killed: list[int],
) -> dict[str, Any]:
    """The `[OVEN-MEM RESULT]` document; its keys are documented in `oven mem --help`."""
    headline = cgroup_peak if cgroup_peak is not None else recorder.peak_pss
    return {
        "label": label,
        "command": command,
        "exit_status": exit_status,
        "duration_s": round(duration_s, 3),
        "headline_peak_bytes": headline,
        "headline_source": "cgroup.memory.peak" if cgroup_peak is not None else "sampled_pss",
        "sampled_peak_pss_bytes": recorder.peak_pss,
        "sampled_peak_rss_bytes": recorder.peak_rss,
        "peak_at_s": None if recorder.peak_at_s is None else round(recorder.peak_at_s, 3),
        "peak_stage": recorder.peak_stage,
        "groups": recorder.group_peaks,
        "stages": {name: s.as_json() for name, s in recorder.stages.items()},
        "top_processes": [
            {"pid": p.pid, "group": p.component, "pss_bytes": p.pss, "rss_bytes": p.rss,
             "command": p.command}
            for p in recorder.peak_processes
        ],
        "budget_bytes": budget,
        "over_budget": budget is not None and headline > budget,
        "samples": recorder.samples,
        "interval_ms": interval_ms,
        "leftovers_killed": leftovers_killed,
        "files": files,
    }


def write_result(path: Path, result: dict[str, Any]) -> None:
    path.write_text(json.dumps(result, indent=2) + "\n")


def result_line(result: dict[str, Any]) -> str:
    return RESULT_PREFIX + json.dumps(result, separators=(",", ":"))


def summary(result: dict[str, Any]) -> str:
    """The human report printed on stderr."""
    lines = [
        f"oven mem [{result['label']}]: {' '.join(result['command'])[:100]}",
        f"  exit {result['exit_status']} after {result['duration_s']:.2f} s, "
        f"{result['samples']} samples every {result['interval_ms']} ms",
        f"  peak {mib(result['headline_peak_bytes'])} ({result['headline_source']}); "
        f"sampled PSS peak {mib(result['sampled_peak_pss_bytes'])}"
        + (f" at {result['peak_at_s']:.2f} s" if result["peak_at_s"] is not None else "")
        + (f" in stage {result['peak_stage']!r}" if result["peak_stage"] else "")
        + f", RSS peak {mib(result['sampled_peak_rss_bytes'])}",
    ]
    groups = sorted(
        ((n, v) for n, v in result["groups"].items() if v), key=lambda item: -item[1]
    )
    if groups:
        lines.append("  groups (peak PSS): " + ", ".join(f"{n} {mib(v)}" for n, v in groups))
    if result["stages"]:
        lines.append("  stages (peak PSS): " + ", ".join(
            f"{n} {mib(s['peak_pss_bytes'])}" for n, s in result["stages"].items()
        ))
    if result["top_processes"]:
        lines.append("  top processes at the peak:")
        lines.append(f"    {'pid':>8} {'group':<9} {'PSS':>12} {'RSS':>12}  command")
        for p in result["top_processes"]:
            lines.append(f"    {p['pid']:>8} {p['group']:<9} {mib(p['pss_bytes']):>12} "
                         f"{mib(p['rss_bytes']):>12}  {p['command'][:70]}")
    if result["leftovers_killed"]:
        lines.append(f"  killed {len(result['leftovers_killed'])} leftover processes: "
                     f"{result['leftovers_killed']}")
    if result["budget_bytes"] is not None:
        verdict = "OVER" if result["over_budget"] else "within"
        lines.append(f"  budget {mib(result['budget_bytes'])}: {verdict}")
    lines.append("  files: " + ", ".join(result["files"].values()))
    return "\n".join(lines)
