"""[compat.og]: the pieces behind the old OG images are names or $codes, refused otherwise with
the key named, like every other setting."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from oven.config import CompatSettings

KEYS = ["kidlisp_pieces", "notepat_pieces", "backdrop_pieces"]


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("name", ["anim\n", "../anim", "Anim", "", "$", "$$roz", "a" * 65,
                                  "anim?x=1", "an im", "anim/", "\u0430nim", "-anim"])
def test_an_og_piece_that_is_no_name_or_code_is_refused(key: str, name: str) -> None:
    with pytest.raises(ValidationError) as raised:
        CompatSettings.model_validate({"og": {key: ["still", name]}})
    assert key in str(raised.value)


@pytest.mark.parametrize("key", KEYS)
def test_names_and_kidlisp_codes_are_og_pieces(key: str) -> None:
    settings = CompatSettings.model_validate({"og": {key: ["still", "$roz", "a-b_9"]}})
    assert getattr(settings.og, key) == ["still", "$roz", "a-b_9"]


@pytest.mark.parametrize("key", KEYS)
def test_an_empty_list_of_og_pieces_is_refused(key: str) -> None:
    with pytest.raises(ValidationError):
        CompatSettings.model_validate({"og": {key: []}})


@pytest.mark.parametrize("layout", ["collage", "MOSAIC", ""])
def test_an_unknown_notepat_layout_is_refused(layout: str) -> None:
    with pytest.raises(ValidationError, match="notepat_layout"):
        CompatSettings.model_validate({"og": {"notepat_layout": layout}})


@pytest.mark.parametrize("field, value", [("backdrop_size", 0), ("backdrop_size", 10**9),
                                          ("backdrop_density", float("nan")),
                                          ("backdrop_fps", float("inf")),
                                          ("backdrop_frames", 1), ("backdrop_frames", -5)])
def test_a_backdrop_size_out_of_bounds_is_refused(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        CompatSettings.model_validate({"og": {field: value}})
