"""The quality flags from sampled pictures: which frames are decoded, and what each flag needs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PIL import Image, ImageDraw

from oven.capture import FLAGS
from oven.capture._quality import flags_of

FLAT = Image.new("RGB", (640, 360), (10, 20, 30))


def speck() -> Image.Image:
    image = FLAT.copy()
    ImageDraw.Draw(image).rectangle((320, 180, 321, 181), fill=(250, 250, 250))
    return image


def drawn() -> Image.Image:
    image = FLAT.copy()
    ImageDraw.Draw(image).rectangle((0, 0, 400, 300), fill=(200, 90, 10))
    return image


class Pictures:
    """The frames' pictures, counting which were asked for (each one asked is a decode)."""

    def __init__(self, frames: Sequence[Image.Image]) -> None:
        self.frames, self.asked = frames, []  # type: ignore[var-annotated]

    def __call__(self, wanted: Sequence[int]) -> Mapping[int, Image.Image]:
        self.asked += list(wanted)
        return {k: self.frames[k] for k in wanted}


def test_a_first_frame_with_a_picture_settles_it_without_decoding_the_others() -> None:
    pictures = Pictures([drawn(), FLAT, FLAT, FLAT, FLAT])
    assert flags_of(5, [b"a", b"b", b"b", b"b", b"b"], pictures) == []
    assert pictures.asked == [0]


def test_blank_needs_every_sampled_frame_blank() -> None:
    pictures = Pictures([FLAT, FLAT, FLAT, FLAT, FLAT])
    assert flags_of(5, [b"a", b"b", b"c", b"d", b"e"], pictures) == ["blank"]
    assert sorted(pictures.asked) == [0, 2, 4]
    # A piece that fades in from a flat first frame is not blank.
    assert flags_of(5, [b"a"] * 4 + [b"e"], Pictures([FLAT, FLAT, drawn(), FLAT, drawn()])) == []


def test_dud_is_a_speck_at_every_sampled_frame_and_frozen_is_one_digest() -> None:
    assert flags_of(3, [b"s"] * 3, Pictures([speck(), FLAT, speck()])) == ["dud", "frozen"]
    assert flags_of(3, [b"s"] * 3, Pictures([speck(), drawn(), speck()])) == ["frozen"]
    assert flags_of(1, [b"s"], Pictures([FLAT])) == ["blank"]  # a still is never frozen
    assert set(FLAGS) == {"blank", "dud", "frozen"}
