"""The featured and code-split layouts served by oven's own /og/{layout}.png from a real
`oven serve`: the day's piece captured at its box's size through the grab queue, its source in
the code-split panel."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from oven.showcase import boxes_for
from tests.oven_process import OvenProcess, running_oven

from .conftest import showcase_config

W, H = 480, 252
SKY_TOP = (11, 16, 38)  # #0b1026, the top of the `still` piece's sky


@pytest.fixture(scope="module")
def oven(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvenProcess]:
    config = showcase_config(og_pieces=["still"], og_width=W, og_height=H,
                             og_wait_timeout_s=150.0)
    with running_oven(tmp_path_factory.mktemp("layouts-oven"), config) as served:
        yield served


def _get(oven: OvenProcess, layout: str) -> Image.Image:
    response = httpx.get(f"{oven.url}/og/{layout}.png", timeout=200)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG"
    return image.convert("RGB")


def _near(pixel: tuple[int, ...], colour: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=False))


def test_the_featured_layout_is_the_days_piece_filling_the_frame(oven: OvenProcess) -> None:
    image = _get(oven, "featured")
    assert image.size == (W, H)
    assert _near(image.getpixel((W // 2, 1)), SKY_TOP), image.getpixel((W // 2, 1))
    # The caption band names the piece: light text pixels over a dark band at the bottom.
    band = [image.getpixel((x, y)) for x in range(W // 2, W) for y in range(H - 20, H - 4)]
    assert any(min(p) > 150 for p in band)


def test_the_code_split_layout_shows_the_pieces_source_beside_its_still(
        oven: OvenProcess) -> None:
    image = _get(oven, "code-split")
    assert image.size == (W, H)
    (box,) = boxes_for("code-split", 1, W, H)
    assert _near(image.getpixel((box.x + box.width // 2, box.y + 1)), SKY_TOP)
    panel = [image.getpixel((x, y)) for x in range(4, box.x - 4) for y in range(30, 180)]
    assert any(p[1] > 200 and p[0] < 200 for p in panel), "no source lines in the panel"
