"""Why a renderer died: over its memory ceiling (the piece's fault, final) or anything else.

Plain data and one pure function, so the sorting of renderer deaths is tested without a browser.
The facts come from three places that each see part of a death:
- the renderer watch: the renderer's own cgroup counted an OOM kill (`memory.oom_control`
  oom_kill on v1, `memory.events` oom_kill on v2), or oven's poller killed it over the ceiling;
- Chromium, through CDP `Target.targetCrashed`: the termination status of the page's renderer
  ("killed" with errorCode 9 for a SIGKILL, "oom" where Chromium itself saw an out-of-memory
  exit, such as V8 reaching --max-old-space-size);
- the page's own crash event, which only says that it died.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class RendererDeath:
    """A renderer the watch saw die."""

    pid: int
    at: float  # time.monotonic() when the watch noticed
    over_ceiling: bool  # killed by its cgroup's OOM killer or by oven's poller, over the ceiling
    ceiling: int  # the page ceiling in force, bytes
    peak: int | None  # its highest charge (cgroup) or the last anonymous RSS seen (poller)
    how: str  # a few words for logs: "oom_kill in its cgroup", "killed by oven at 412 MB", ...


@dataclass(frozen=True)
class Verdict:
    kind: Literal["memory", "crash"]
    message: str


def classify_renderer_death(
    *,
    death: RendererDeath | None,
    crash_status: str | None,
    crash_code: int | None,
    ceiling: int | None,
) -> Verdict:
    """Sort one page's renderer death.

    `death` is the watch's record of the page's renderer, if it found one; `crash_status` and
    `crash_code` are Chromium's termination status and code for the page's target, if it said.
    A memory death is final: the same page would only grow past the same ceiling again.
    """
    if death is not None and death.over_ceiling:
        return Verdict("memory", memory_message(death.ceiling))
    if crash_status == "oom":
        # Chromium's own out-of-memory exit (the JS heap cap, or an allocation that failed).
        return Verdict("memory", memory_message(ceiling))
    said = crash_status or "unknown"
    if crash_code is not None:
        said += f", code {crash_code}"
    return Verdict("crash", f"the piece's renderer died ({said})")


def memory_message(ceiling: int | None) -> str:
    if ceiling is None:
        return "page exceeded its memory ceiling"
    return f"page exceeded its memory ceiling ({ceiling >> 20} MB)"
