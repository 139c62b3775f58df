"""Sorting renderer deaths: over the ceiling is the piece's fault and final, anything else is a
crash; and a page's crash is matched to the right renderer's recorded death."""

from __future__ import annotations

import asyncio
import time

import pytest

from oven.capture import MemoryCeilingExceeded, PieceError, RendererCrashed
from oven.memory import CeilingPlan, RendererDeath, RendererWatch, classify_renderer_death

MB = 1 << 20


def _death(pid: int, *, over: bool, at: float | None = None, how: str = "") -> RendererDeath:
    return RendererDeath(pid, time.monotonic() if at is None else at, over, 300 * MB,
                         310 * MB if over else None, how or ("oom_kill" if over else "exited"))


def test_a_renderer_killed_in_its_cgroup_over_the_ceiling_is_a_memory_death() -> None:
    verdict = classify_renderer_death(death=_death(7, over=True, how="oom_kill in its cgroup"),
                                      crash_status=None, crash_code=None, ceiling=300 * MB)
    assert verdict.kind == "memory"
    assert verdict.message == "page exceeded its memory ceiling (300 MB)"


def test_a_renderer_oven_killed_over_the_ceiling_is_a_memory_death_whatever_chromium_says() -> None:
    verdict = classify_renderer_death(death=_death(7, over=True, how="killed by oven at 312 MB"),
                                      crash_status="killed", crash_code=9, ceiling=300 * MB)
    assert verdict.kind == "memory"


def test_chromium_reporting_an_out_of_memory_exit_is_a_memory_death() -> None:
    # V8 reaching --max-old-space-size ends the renderer without any cgroup involved.
    verdict = classify_renderer_death(death=None, crash_status="oom", crash_code=None,
                                      ceiling=256 * MB)
    assert verdict == classify_renderer_death(death=_death(3, over=False), crash_status="oom",
                                              crash_code=None, ceiling=256 * MB)
    assert verdict.kind == "memory" and "(256 MB)" in verdict.message


@pytest.mark.parametrize(("death", "status", "code"), [
    (None, None, None),  # nothing recorded: an ordinary crash
    (_death(5, over=False), "crashed", 11),  # a segfault
    (_death(5, over=False), "killed", 9),  # SIGKILLed by someone else, under the ceiling
    (None, "abnormal", 1),
])
def test_other_renderer_deaths_are_crashes_that_say_how(
    death: RendererDeath | None, status: str | None, code: int | None,
) -> None:
    verdict = classify_renderer_death(death=death, crash_status=status, crash_code=code,
                                      ceiling=300 * MB)
    assert verdict.kind == "crash"
    assert verdict.message.startswith("the piece's renderer died")
    if status is not None:
        assert status in verdict.message


def test_a_memory_death_is_a_permanent_piece_error_and_a_crash_is_not() -> None:
    # The grab run turns PieceError into a Permanent failure with piece_fault=True (never
    # retried, counted toward freezing) and RendererCrashed into a Transient one.
    assert issubclass(MemoryCeilingExceeded, PieceError)
    assert not issubclass(MemoryCeilingExceeded, RendererCrashed)


def _watch() -> RendererWatch:
    return RendererWatch(CeilingPlan("poll", "test", 300 * MB, None), None)


def test_a_crash_claims_its_own_renderers_death_before_anyone_elses() -> None:
    watch = _watch()
    now = time.monotonic()
    watch._deaths.extend([_death(11, over=True, at=now), _death(22, over=True, at=now)])
    assert watch.claim({22}, {11}, now).pid == 22
    assert watch.claim({11}, set(), now).pid == 11
    assert watch.claim({11, 22}, set(), now) is None  # each death is claimed once


def test_a_crash_without_known_renderers_takes_a_near_memory_death_of_nobody_else() -> None:
    watch = _watch()
    now = time.monotonic()
    watch._deaths.extend([
        _death(31, over=True, at=now - 10),  # too long ago
        _death(32, over=False, at=now),  # not over the ceiling
        _death(33, over=True, at=now),  # another page's renderer
    ])
    assert watch.claim(set(), {33}, now) is None
    watch._deaths.append(_death(34, over=True, at=now + 0.2))
    found = watch.claim(set(), {33}, now)
    assert found is not None and found.pid == 34


def test_waiting_for_a_death_is_bounded() -> None:
    watch = _watch()
    started = time.monotonic()
    found = asyncio.run(watch.death_of({1}, set(), at=started, timeout_s=0.2))
    assert found is None
    assert time.monotonic() - started < 1.0
