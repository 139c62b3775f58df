"""OG image layouts: where each piece still goes, and the Pillow composition of the stills.

Every still is captured at exactly its box's size, so composing is pasting, not resampling
(a still of another size, which should not happen, is fitted and cropped to its box).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageOps

LAYOUTS = ("mosaic", "filmstrip")

BACKGROUND = (16, 16, 24)
FILM = (17, 17, 17)
SPROCKET = (236, 232, 220)
GUTTER = 8  # px between mosaic cells and around them
TARGET_CELL_ASPECT = 4 / 3  # mosaic cells close to this read as "pictures", not slivers
EMPTY_CELL_COST = 0.5  # how much an empty grid cell weighs against a worse cell shape


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    width: int
    height: int


def mosaic_grid(count: int, width: int, height: int) -> tuple[int, int]:
    """(columns, rows) for `count` cells: cell shapes near 4:3, few empty cells."""

    def cost(cols: int) -> float:
        rows = math.ceil(count / cols)
        cell_w = (width - GUTTER * (cols + 1)) / cols
        cell_h = (height - GUTTER * (rows + 1)) / rows
        if cell_w < 1 or cell_h < 1:
            return math.inf
        shape = abs(math.log(cell_w / cell_h / TARGET_CELL_ASPECT))
        return shape + EMPTY_CELL_COST * (cols * rows - count)

    cols = min(range(1, count + 1), key=cost)
    return cols, math.ceil(count / cols)


def mosaic_boxes(count: int, width: int, height: int) -> list[Box]:
    cols, rows = mosaic_grid(count, width, height)
    cell_w = (width - GUTTER * (cols + 1)) // cols
    cell_h = (height - GUTTER * (rows + 1)) // rows
    boxes = []
    for index in range(count):
        row, col = divmod(index, cols)
        in_row = min(cols, count - row * cols)
        # A short last row is centred rather than left-aligned.
        offset = (width - in_row * cell_w - GUTTER * (in_row - 1)) // 2
        boxes.append(Box(offset + col * (cell_w + GUTTER),
                         GUTTER + row * (cell_h + GUTTER) + _leftover(height, rows, cell_h),
                         cell_w, cell_h))
    return boxes


def _leftover(height: int, rows: int, cell_h: int) -> int:
    return (height - rows * cell_h - GUTTER * (rows + 1)) // 2


def _film_band(height: int) -> int:
    return max(8, round(height * 0.09))


def filmstrip_boxes(count: int, width: int, height: int) -> list[Box]:
    """One row of frames between two sprocket bands."""
    band = _film_band(height)
    pad = max(4, round(height * 0.025))
    frame_w = (width - pad * (count + 1)) // count
    frame_h = height - 2 * band - 2 * pad
    left = (width - count * frame_w - pad * (count - 1)) // 2
    return [Box(left + i * (frame_w + pad), band + pad, frame_w, frame_h) for i in range(count)]


def boxes_for(layout: str, count: int, width: int, height: int) -> list[Box]:
    if layout == "mosaic":
        return mosaic_boxes(count, width, height)
    if layout == "filmstrip":
        return filmstrip_boxes(count, width, height)
    raise ValueError(f"unknown OG layout {layout!r}; known: {', '.join(LAYOUTS)}")


def compose(layout: str, stills: Sequence[bytes], width: int, height: int) -> bytes:
    """The OG image as PNG bytes: `stills` (PNG/JPEG/WebP bytes) in the layout's boxes."""
    boxes = boxes_for(layout, len(stills), width, height)
    canvas = Image.new("RGB", (width, height), FILM if layout == "filmstrip" else BACKGROUND)
    if layout == "filmstrip":
        _sprockets(canvas)
    for box, data in zip(boxes, stills, strict=True):
        with Image.open(io.BytesIO(data)) as still:
            picture = still.convert("RGB")
        if picture.size != (box.width, box.height):
            picture = ImageOps.fit(picture, (box.width, box.height), Image.Resampling.LANCZOS)
        canvas.paste(picture, (box.x, box.y))
    out = io.BytesIO()
    canvas.save(out, format="PNG", optimize=False)
    return out.getvalue()


def _sprockets(canvas: Image.Image) -> None:
    width, height = canvas.size
    band = _film_band(height)
    hole_h = max(4, band // 2)
    hole_w = max(4, round(hole_h * 1.4))
    step = hole_w * 2
    holes = max(1, (width - hole_w) // step)
    left = (width - (holes - 1) * step - hole_w) // 2  # centred: the same margin both ends
    draw = ImageDraw.Draw(canvas)
    for top in ((band - hole_h) // 2, height - band + (band - hole_h) // 2):
        for x in range(left, width - hole_w, step):
            draw.rounded_rectangle((x, top, x + hole_w, top + hole_h), radius=hole_h // 4,
                                   fill=SPROCKET)
