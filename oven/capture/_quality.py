"""Flags for a capture that is probably not what its client wanted, computed on its frames.

- `blank`: every sampled frame is one colour, or fully transparent (a script that failed to
  load, a canvas never drawn);
- `dud`: not blank, but every sampled frame is near-uniform on a coarse grid (a speck of text
  on an empty page, a loading spinner's first frame);
- `frozen`: an animation whose frames are all identical (a static page, a stopped piece).
Sampled: the first, middle and last frames, so the cost stays ~10 ms whatever the length (the
first alone when it is neither blank nor a dud).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from PIL import Image

Flag = Literal["blank", "dud", "frozen"]
FLAGS: tuple[Flag, ...] = ("blank", "dud", "frozen")

# Largest spread of a channel (0..255) still taken as one colour: JPEG frames of a flat colour
# can wobble by one or two levels.
_FLAT = 2
# The coarse grid, and the spread of its cells' mean colours below which a frame is a dud.
_GRID = 8
_DUD = 6


def flags_of(count: int, digests: Sequence[bytes],
             pictures: Callable[[Sequence[int]], Mapping[int, Image.Image]]) -> list[Flag]:
    """The quality flags of a capture of `count` frames (see the module doc); [] for a good
    one. `pictures` gives the whole picture at each frame asked for."""
    flags: list[Flag] = []
    picked = sorted({0, count // 2, count - 1})
    # Both flags need every sampled frame blank or a dud, so a first frame that is neither
    # settles it: the later ones are not decoded (a canvas frame's picture means decoding
    # every changed box before it).
    kinds = [_kind(pictures(picked[:1])[0])]
    if kinds[0] != "ok" and len(picked) > 1:
        sampled = pictures(picked[1:])
        kinds += [_kind(sampled[i]) for i in picked[1:]]
    if all(kind == "blank" for kind in kinds):
        flags.append("blank")
    elif all(kind in ("blank", "dud") for kind in kinds):
        flags.append("dud")
    if len(digests) > 1 and len(set(digests)) == 1:
        flags.append("frozen")
    return flags


def _kind(image: Image.Image) -> Literal["blank", "dud", "ok"]:
    rgba = image.convert("RGBA")
    alpha = rgba.getchannel("A").getextrema()
    if alpha[1] == 0:  # int extrema for an 8-bit band
        return "blank"
    if all(high - low <= _FLAT for low, high in rgba.convert("RGB").getextrema()):  # type: ignore[misc]
        return "blank"
    cells = rgba.convert("RGB").resize((_GRID, _GRID), Image.Resampling.BOX)
    if all(high - low <= _DUD for low, high in cells.getextrema()):  # type: ignore[misc]
        return "dud"
    return "ok"
