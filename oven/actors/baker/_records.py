"""A bake record's steps: what its tape says, its lifecycle moves, why it failed."""

from __future__ import annotations

from typing import Any

from oven.bakes import BakePlan, BakeRefused, BakeState, Tape
from oven.encode import EncodeError
from oven.storage import StorageError


def describe(doc: dict[str, Any], tape: Tape, plan: BakePlan) -> None:
    """What the checked tape and its plan say about a bake."""
    doc.update(frames=tape.frames, fps=round(plan.fps, 6), fps_source=plan.fps_source,
               duration=round(plan.duration_s, 6), has_audio=tape.soundtrack is not None,
               width=plan.out_width, height=plan.out_height, scale=plan.scale)


def state_of(doc: dict[str, Any]) -> BakeState:
    return BakeState(doc["state"])


def move(doc: dict[str, Any], wanted: BakeState, **fields: Any) -> None:
    """Step a bake record to `wanted` (InvalidBakeTransition if its lifecycle forbids it)."""
    state_of(doc).check_transition(wanted)
    doc.update(fields, state=wanted.value)


def reason(exc: Exception) -> str:
    if isinstance(exc, BakeRefused):
        return exc.message
    if isinstance(exc, EncodeError | StorageError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
