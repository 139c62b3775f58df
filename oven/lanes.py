"""Lanes: the queues a grab waits in, and the table of how page slots go to them.

A leaf like oven.jobs: the store's records, the grab requests and the grab queue all read
lanes from here (oven.grabs imports the capture stack, which the store has no need of).
Adding a lane is a row here, plus a [queue] setting if it reserves page slots.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class Lane(enum.StrEnum):
    INTERACTIVE = "interactive"
    BACKGROUND = "background"


@dataclass(frozen=True)
class LaneRule:
    """`order`: claims take the oldest job of the first lane (lowest order) that has one.
    `reserved`: the [queue] setting naming page slots that only this lane and the lanes
    before it may use (None: it reserves none)."""

    order: int
    reserved: str | None = None


LANES: Mapping[Lane, LaneRule] = {
    Lane.INTERACTIVE: LaneRule(order=0, reserved="interactive_reserved"),
    Lane.BACKGROUND: LaneRule(order=1),
}


def lane_order(lane: Lane) -> int:
    return LANES[lane].order


def claimable_lanes(*, free: int, pages: int, queue: object) -> list[Lane]:
    """The lanes a claim may take a job from with `free` of `pages` page slots free, in claim
    order. A lane gets a slot only while more are free than the lanes before it reserve;
    at most pages - 1 are reserved, so every lane can run on some page. `queue` is the
    QueueSettings holding each rule's `reserved` count."""
    lanes, ahead = [], 0
    for lane in sorted(LANES, key=lane_order):
        if free > min(ahead, pages - 1):
            lanes.append(lane)
        if (setting := LANES[lane].reserved) is not None:
            ahead += int(getattr(queue, setting))
    return lanes
