"""EncoderSettings is a schema: ranges, choices, unknown keys rejected."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from oven.encode import EncoderSettings


def test_unknown_keys_are_rejected() -> None:
    with pytest.raises(ValidationError, match="webp_qualty"):
        EncoderSettings.model_validate({"webp_qualty": 50})


@pytest.mark.parametrize(
    ("key", "value"),
    [("webp_quality", 101), ("webp_compression_level", 7), ("gif_max_colors", 3),
     ("mp4_crf", 52), ("jpeg_quality", 0), ("png_compression", 10), ("timeout_s", 0),
     ("concurrency", -1), ("gif_dither", "atkinson"), ("mp4_preset", "placebo")],
)
def test_out_of_range_values_and_unknown_choices_are_rejected(key: str, value: object) -> None:
    with pytest.raises(ValidationError, match=key):
        EncoderSettings.model_validate({key: value})


def test_zero_concurrency_means_one_per_usable_core() -> None:
    assert EncoderSettings().effective_concurrency() == len(os.sched_getaffinity(0))
    assert EncoderSettings(concurrency=3).effective_concurrency() == 3


def test_jpeg_quality_maps_onto_ffmpegs_qscale_best_to_worst() -> None:
    assert EncoderSettings(jpeg_quality=100).jpeg_qscale() == 2
    assert EncoderSettings(jpeg_quality=1).jpeg_qscale() == 31
    assert EncoderSettings(jpeg_quality=90).jpeg_qscale() == 5
