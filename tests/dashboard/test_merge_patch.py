"""The delta computation: RFC 7386 merge patches between dashboard states round-trip exactly."""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

from oven.http._dashboard_hub import merge_diff, merge_patch, prune, sse_event


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """Objects, lists and scalars without null, as the dashboard's pruned states are."""
    kind = rng.choice(["obj", "obj", "list", "int", "float", "str", "bool"] if depth < 4
                      else ["int", "float", "str", "bool"])
    if kind == "obj":
        return {rng.choice("abcdefgh"): random_json(rng, depth + 1)
                for _ in range(rng.randint(0, 5))}
    if kind == "list":
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if kind == "int":
        return rng.randint(-3, 3)
    if kind == "float":
        return rng.choice([0.5, 1.5, 2.0])
    if kind == "bool":
        return rng.random() < 0.5
    return rng.choice(["x", "y", ""])


def mutate(rng: random.Random, value: dict[str, Any]) -> dict[str, Any]:
    """A state a few edits away from `value`, as consecutive dashboard ticks are."""
    out = json.loads(json.dumps(value))
    for _ in range(rng.randint(0, 4)):
        node = out
        while True:
            children = [k for k, v in node.items() if isinstance(v, dict)]
            if not children or rng.random() < 0.4:
                break
            node = node[rng.choice(children)]
        action = rng.choice(["set", "delete", "replace"])
        keys = list(node)
        if action == "delete" and keys:
            del node[rng.choice(keys)]
        elif action == "replace" and keys:
            node[rng.choice(keys)] = random_json(rng, 3)
        else:
            node[rng.choice("abcdefgh")] = random_json(rng, 2)
    return out


def test_applying_the_diff_of_two_states_to_the_first_gives_the_second_every_time() -> None:
    rng = random.Random(7386)
    for _ in range(3000):
        old = {"root": random_json(rng)}
        new = mutate(rng, old) if rng.random() < 0.7 else {"root": random_json(rng)}
        patch = merge_diff(old, new)
        assert merge_patch(old, patch) == new, (old, new, patch)
        # What the browser does: the patch crosses the wire as JSON and is applied there.
        assert merge_patch(old, json.loads(json.dumps(patch))) == new


def test_a_chain_of_deltas_rebuilds_the_latest_state_from_the_snapshot() -> None:
    rng = random.Random(4)
    states = [{"grabs": {"jobs": {}}, "actors": {"store": {"state": "running"}}}]
    for _ in range(200):
        states.append(mutate(rng, states[-1]))
    client = states[0]
    for before, after in itertools.pairwise(states):
        client = merge_patch(client, merge_diff(before, after))
    assert client == states[-1]
    # A client that was behind gets one merged delta instead of the chain.
    assert merge_patch(states[0], merge_diff(states[0], states[-1])) == states[-1]


def test_equal_states_give_an_empty_patch_and_a_change_gives_only_the_changed_part() -> None:
    state = {"grabs": {"jobs": {"a": {"stage": "capture", "piece": "anim"}, "b": {"x": 1}}}}
    assert merge_diff(state, json.loads(json.dumps(state))) == {}
    later = json.loads(json.dumps(state))
    later["grabs"]["jobs"]["a"]["stage"] = "encode"
    del later["grabs"]["jobs"]["b"]
    assert merge_diff(state, later) == {"grabs": {"jobs": {"a": {"stage": "encode"}, "b": None}}}


def test_a_value_changing_type_is_sent_even_when_python_calls_it_equal() -> None:
    assert merge_diff({"a": 1}, {"a": True}) == {"a": True}
    assert merge_diff({"a": 1}, {"a": 1.0}) == {"a": 1.0}
    assert merge_diff({"a": {"b": 1}}, {"a": [1]}) == {"a": [1]}
    assert merge_diff({"a": [1]}, {"a": {}}) == {"a": {}}


def test_the_rfc_7386_examples_apply_as_the_rfc_says() -> None:
    # RFC 7386 appendix A (the cases whose result has no null; nulls are pruned from states).
    cases = [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ]
    for target, patch, expected in cases:
        assert merge_patch(target, patch) == expected, (target, patch)


def test_nulls_are_pruned_from_states_because_a_merge_patch_null_means_delete() -> None:
    raw = {"a": None, "b": {"c": None, "d": 1}, "e": [None, {"f": None}]}
    assert prune(raw) == {"b": {"d": 1}, "e": [None, {}]}


def test_an_event_is_one_sse_frame_even_when_strings_hold_newlines() -> None:
    frame = sse_event("delta", 7, {"error": "line one\nline two"}).decode()
    assert frame.startswith("event: delta\nid: 7\ndata: ") and frame.endswith("\n\n")
    assert frame.count("\n") == 4
    assert json.loads(frame.split("data: ", 1)[1]) == {"error": "line one\nline two"}
