"""A bake's lifecycle as explicit states: queued -> running -> complete | failed, nothing else."""

from __future__ import annotations

import itertools

import pytest

from oven.bakes import BakeState, InvalidBakeTransition

ALLOWED = {
    (BakeState.QUEUED, BakeState.RUNNING),
    (BakeState.QUEUED, BakeState.FAILED),  # stopped, or its instance gone, before a slot
    (BakeState.RUNNING, BakeState.COMPLETE),
    (BakeState.RUNNING, BakeState.FAILED),
}


def test_bake_states_are_the_words_the_api_and_the_store_use() -> None:
    assert [s.value for s in BakeState] == ["queued", "running", "complete", "failed"]
    assert [s for s in BakeState if s.is_final] == [BakeState.COMPLETE, BakeState.FAILED]


@pytest.mark.parametrize(("current", "wanted"), sorted(ALLOWED))
def test_a_bake_may_take_each_step_of_its_lifecycle(current: BakeState,
                                                   wanted: BakeState) -> None:
    current.check_transition(wanted)


@pytest.mark.parametrize(
    ("current", "wanted"),
    [pair for pair in itertools.product(BakeState, BakeState) if pair not in ALLOWED])
def test_any_other_step_is_refused_loudly_with_both_states_named(current: BakeState,
                                                                 wanted: BakeState) -> None:
    with pytest.raises(InvalidBakeTransition,
                       match=f"cannot go from '{current.value}' to '{wanted.value}'"):
        current.check_transition(wanted)
