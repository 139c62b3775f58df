"""Stills that need no encode: the frame Chromium wrote is already the file asked for."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from ._format import Format
from ._request import EncodeRequest
from ._webpmux import is_webp

# The frame suffix each still format can be taken from as it is.
_SUFFIX = {Format.PNG: ".png", Format.JPEG: ".jpg", Format.WEBP: ".webp"}
_PILLOW_FORMAT = {Format.PNG: "PNG", Format.JPEG: "JPEG", Format.WEBP: "WEBP"}
# How a whole file ends (PNG's empty IEND chunk with its CRC, JPEG's EOI marker): Pillow
# accepts a file cut inside its end, which some decoders refuse.
_ENDING = {Format.PNG: b"\x00\x00\x00\x00IEND\xaeB`\x82", Format.JPEG: b"\xff\xd9"}


def may_be_taken_as_is(request: EncodeRequest) -> bool:
    """Whether the request asks for nothing ffmpeg would add: one frame, no resize, same format.

    Cheap (no file is read); `is_valid_as_is` then checks the frame itself.
    """
    fmt = request.format
    return (request.still and request.upscale == 1 and fmt in _SUFFIX
            and request.frames[0].suffix == _SUFFIX[fmt])


def is_valid_as_is(frame: Path, fmt: Format) -> bool:
    """The frame is a well-formed file of `fmt`: its end (a WebP: its RIFF length); for PNG
    every chunk's CRC; a JPEG or WebP is decoded, since its header says nothing of a truncated
    or damaged picture.

    Anything else, including a picture too large for Pillow's header checks, goes to ffmpeg,
    which converts it or fails with its own words about it.
    """
    try:
        if fmt is Format.WEBP:
            # A canvas frame (oven.capture's): RIFF says its own length; then decoded.
            if not is_webp(frame.read_bytes()):
                return False
        else:
            ending = _ENDING[fmt]
            with frame.open("rb") as file:
                file.seek(-len(ending), 2)
                if file.read() != ending:
                    return False
        with Image.open(frame, formats=[_PILLOW_FORMAT[fmt]]) as image:
            if fmt is Format.PNG:
                image.verify()
            else:
                image.load()
    except Exception:  # any doubt about the frame: let ffmpeg decide
        return False
    return True
