"""OG image layouts: where each piece still goes, and the Pillow composition of the stills.

Every still is captured at exactly its box's size, so composing is pasting, not resampling
(a still of another size, which should not happen, is fitted and cropped to its box).
`mosaic` and `filmstrip` show every piece; `featured` (one still filling the frame under a
caption band) and `code-split` (a piece's source beside its still) show the day's piece.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont, ImageOps

LAYOUTS = ("featured", "mosaic", "filmstrip", "code-split")
ONE_PIECE = ("featured", "code-split")  # these show one piece a day, not all of them

BACKGROUND = (16, 16, 24)
FILM = (17, 17, 17)
SPROCKET = (236, 232, 220)
PANEL = (26, 26, 46)
CODE = (136, 255, 136)
COMMENT = (120, 120, 140)
CAPTION = (235, 235, 235)
CAPTION_DIM = (190, 190, 190)
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


def caption_band(height: int) -> int:
    """Height of the caption band along the bottom of `featured` and `code-split`."""
    return max(12, round(height * 0.095))


def code_panel_width(width: int) -> int:
    return round(width * 5 / 12)


def code_split_boxes(width: int, height: int) -> list[Box]:
    """The still to the right of the source panel, above the caption band."""
    pad = max(4, round(height * 0.04))
    left = code_panel_width(width) + pad
    return [Box(left, pad, max(1, width - left - pad),
                max(1, height - caption_band(height) - 2 * pad))]


def boxes_for(layout: str, count: int, width: int, height: int) -> list[Box]:
    if layout in ONE_PIECE and count != 1:
        raise ValueError(f"the {layout} OG layout shows one piece, not {count}")
    if layout == "featured":
        return [Box(0, 0, width, height)]
    if layout == "code-split":
        return code_split_boxes(width, height)
    if layout == "mosaic":
        return mosaic_boxes(count, width, height)
    if layout == "filmstrip":
        return filmstrip_boxes(count, width, height)
    raise ValueError(f"unknown OG layout {layout!r}; known: {', '.join(LAYOUTS)}")


def pieces_for(layout: str, pieces: Sequence[str], day: dt.date) -> list[str]:
    """The pieces a layout shows on `day`: all of them, or one that changes every day."""
    if not pieces:
        raise ValueError("an OG image needs at least one piece")
    if layout in ONE_PIECE:
        return [pieces[day.toordinal() % len(pieces)]]
    return list(pieces)


def compose(layout: str, stills: Sequence[bytes], width: int, height: int, *,
            title: str = "", caption: str = "", source: Sequence[str] = ()) -> bytes:
    """The OG image as PNG bytes: `stills` (PNG/JPEG/WebP bytes) in the layout's boxes.

    `featured` and `code-split` write `title` (a brand) and `caption` (the piece) in a band
    along the bottom; `code-split` writes the lines of `source` in its left panel.
    """
    boxes = boxes_for(layout, len(stills), width, height)
    background = {"filmstrip": FILM, "code-split": PANEL}.get(layout, BACKGROUND)
    canvas = Image.new("RGB", (width, height), background)
    if layout == "filmstrip":
        _sprockets(canvas)
    for box, data in zip(boxes, stills, strict=True):
        with Image.open(io.BytesIO(data)) as still:
            picture = still.convert("RGB")
        if picture.size != (box.width, box.height):
            picture = ImageOps.fit(picture, (box.width, box.height), Image.Resampling.LANCZOS)
        canvas.paste(picture, (box.x, box.y))
    if layout == "code-split":
        _source_panel(canvas, caption, source)
    if layout in ONE_PIECE:
        canvas = _caption(canvas, title, caption)
    out = io.BytesIO()
    canvas.save(out, format="PNG", optimize=False)
    return out.getvalue()


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's bundled font: no font file to ship or find on the host.
    return ImageFont.load_default(size=max(6, size))


def _caption(canvas: Image.Image, title: str, caption: str) -> Image.Image:
    width, height = canvas.size
    band = caption_band(height)
    # Translucent, so a featured still shows through its caption band.
    shade = Image.new("RGBA", (width, band), (0, 0, 0, 200))
    out = canvas.convert("RGBA")
    out.alpha_composite(shade, (0, height - band))
    draw = ImageDraw.Draw(out)
    margin = max(4, round(height * 0.038))
    middle = height - band // 2
    if title:
        draw.text((margin, middle), title, font=_font(round(band * 0.45)), fill=CAPTION,
                  anchor="lm")
    if caption:
        draw.text((width - margin, middle), caption, font=_font(round(band * 0.33)),
                  fill=CAPTION_DIM, anchor="rm")
    return out.convert("RGB")


def _source_panel(canvas: Image.Image, caption: str, source: Sequence[str]) -> None:
    width, height = canvas.size
    panel = code_panel_width(width)
    size = max(6, round(height * 0.028))
    line_height = round(size * 1.5)
    margin = max(4, round(height * 0.035))
    rows = max(0, (height - caption_band(height) - 2 * margin) // line_height - 1)
    font = _font(size)
    draw = ImageDraw.Draw(canvas)  # the canvas is PANEL already: the panel is its left part
    draw.text((margin, margin), f"// {caption}", font=font, fill=COMMENT)
    lines = list(source)
    shown = lines[:rows] if len(lines) <= rows else [*lines[:max(0, rows - 1)], "..."]
    for row, line in enumerate(shown, start=1):
        # Cut to the panel: a long line must not run over the still.
        text = line.expandtabs(2)[:panel // max(1, size // 3)]
        while text and draw.textlength(text, font=font) > panel - 2 * margin:
            text = text[:-1]
        draw.text((margin, margin + row * line_height), text, font=font, fill=CODE)


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
