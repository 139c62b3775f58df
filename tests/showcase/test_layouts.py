"""OG layouts composed from stills with Pillow alone (no browser): where each still lands, the
caption band of `featured` and `code-split`, the source panel, and odd sizes and inputs."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from PIL import Image

from oven.showcase import LAYOUTS, boxes_for, compose, pieces_for

RED, GREEN, BLUE = (250, 20, 20), (20, 250, 20), (20, 20, 250)


def _still(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


def _image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.convert("RGB")


def test_the_old_services_four_layouts_are_known() -> None:
    assert set(LAYOUTS) == {"featured", "mosaic", "filmstrip", "code-split"}


def test_a_featured_image_is_the_still_filling_the_frame_under_a_caption_band() -> None:
    (box,) = boxes_for("featured", 1, 1200, 630)
    assert (box.x, box.y, box.width, box.height) == (0, 0, 1200, 630)
    image = _image(compose("featured", [_still(1200, 630, RED)], 1200, 630,
                           title="KidLisp.com", caption="$roz"))
    assert image.size == (1200, 630)
    assert image.getpixel((600, 200)) == RED
    # The band along the bottom darkens the still (it shows through, darker).
    band = image.getpixel((600, 625))
    assert band[0] < RED[0] // 2
    # Both texts are written in the band: light pixels at its left and right ends.
    left = [image.getpixel((x, y)) for x in range(20, 200) for y in range(575, 625)]
    right = [image.getpixel((x, y)) for x in range(1000, 1180) for y in range(575, 625)]
    assert any(min(p) > 150 for p in left), "no title in the caption band"
    assert any(min(p) > 150 for p in right), "no caption in the caption band"


def test_a_code_split_image_shows_the_source_left_of_the_still() -> None:
    (box,) = boxes_for("code-split", 1, 1200, 630)
    assert box.x >= 1200 * 5 // 12 and box.x + box.width <= 1200
    assert box.y + box.height <= 630 - 60
    still = _still(box.width, box.height, BLUE)
    source = ["(wipe \"black\")", "(ink \"lime\")", "(box 50 50 100 100)"]
    image = _image(compose("code-split", [still], 1200, 630, title="KidLisp.com",
                           caption="$roz", source=source))
    assert image.getpixel((box.x + box.width // 2, box.y + box.height // 2)) == BLUE
    panel = [image.getpixel((x, y)) for x in range(0, box.x - 10, 2) for y in range(60, 200, 2)]
    green = [p for p in panel if p[1] > 200 and p[0] < 200]
    assert green, "the source lines were not written in the panel"


def test_a_code_split_panel_cuts_long_and_many_lines_to_its_width_and_height() -> None:
    (box,) = boxes_for("code-split", 1, 1200, 630)
    still = _still(box.width, box.height, BLUE)
    source = ["(" + "x" * 5000 + ")"] * 500
    image = _image(compose("code-split", [still], 1200, 630, source=source))
    # Nothing spills over the still.
    edge = [image.getpixel((box.x + 2, y)) for y in range(box.y + 2, box.y + box.height - 2)]
    assert set(edge) == {BLUE}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("size", [(64, 64), (1200, 630), (300, 2000), (4096, 64)])
def test_every_layout_composes_at_any_configurable_size(layout: str,
                                                        size: tuple[int, int]) -> None:
    width, height = size
    count = 1 if layout in ("featured", "code-split") else 3
    boxes = boxes_for(layout, count, width, height)
    for box in boxes:
        assert box.x >= 0 and box.y >= 0 and box.width >= 1 and box.height >= 1
        assert box.x + box.width <= width and box.y + box.height <= height
    stills = [_still(b.width, b.height, c) for b, c in zip(boxes, (RED, GREEN, BLUE),
                                                          strict=False)]
    image = _image(compose(layout, stills, width, height, title="t", caption="c",
                           source=["a", "b"]))
    assert image.size == (width, height)


@pytest.mark.parametrize("layout", ["featured", "code-split"])
def test_the_one_piece_layouts_refuse_several_stills(layout: str) -> None:
    with pytest.raises(ValueError, match="one piece"):
        boxes_for(layout, 3, 1200, 630)


def test_an_unknown_layout_is_refused_naming_the_layouts() -> None:
    with pytest.raises(ValueError, match="featured, mosaic, filmstrip, code-split"):
        boxes_for("collage", 1, 1200, 630)


def test_the_one_piece_layouts_show_a_different_piece_each_day_and_the_others_all() -> None:
    pieces = ["still", "anim", "clock"]
    day = dt.date(2026, 11, 30)
    shown = {pieces_for("featured", pieces, day + dt.timedelta(days=n))[0] for n in range(3)}
    assert shown == set(pieces)
    assert pieces_for("featured", pieces, day) == pieces_for("code-split", pieces, day)
    assert pieces_for("mosaic", pieces, day) == pieces
    assert pieces_for("filmstrip", pieces, day) == pieces
    with pytest.raises(ValueError):
        pieces_for("featured", [], day)
