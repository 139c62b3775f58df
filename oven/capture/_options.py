"""A request's own options for its capture: rendering emulation, injected styles and scripts,
and the element to clip frames to."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from playwright.async_api import Error as PlaywrightError

from oven.capture._errors import NotAsAsked
from oven.capture._watch import PageWatch, first_line, is_gone

if TYPE_CHECKING:
    from oven.capture._browser import Slot
    from oven.capture._capture import CaptureRequest


async def emulate(slot: Slot, request: CaptureRequest) -> None:
    """Per-job rendering options; Slot.reset takes them back for the next job."""
    if request.background == "transparent":
        await slot.emulate_background_transparent()
    if request.color_scheme is not None or request.reduced_motion:
        await slot.emulate_media(color_scheme=request.color_scheme,
                                 reduced_motion=request.reduced_motion)


async def inject(slot: Slot, watch: PageWatch, request: CaptureRequest) -> None:
    """The request's styles, then its scripts, into the loaded document, before ready."""
    try:
        for css in request.styles:
            await slot.page.add_style_tag(content=css)
        for js in request.scripts:
            await slot.page.add_script_tag(content=js)
    except PlaywrightError as exc:
        if is_gone(slot, watch, exc):
            raise
        # e.g. the page's Content-Security-Policy refuses inline styles or scripts.
        raise NotAsAsked(f"scripts/styles could not be injected: {first_line(exc)}") from exc


async def element_clip(slot: Slot, watch: PageWatch,
                        request: CaptureRequest) -> dict[str, float] | None:
    """The `selector` element's box in document CSS pixels, whole pixels outward, as a
    captureScreenshot clip (taken once: an element that moves later is not followed)."""
    if request.selector is None:
        return None
    script = """(selector) => {
      let element;
      try { element = document.querySelector(selector); } catch (e) { return "invalid"; }
      if (!element) return null;
      const r = element.getBoundingClientRect();
      return [r.left + scrollX, r.top + scrollY, r.right + scrollX, r.bottom + scrollY];
    }"""
    try:
        box = await slot.page.evaluate(script, request.selector)
    except PlaywrightError as exc:
        if is_gone(slot, watch, exc):
            raise
        raise NotAsAsked(f"selector: {first_line(exc)}") from exc
    if box == "invalid":
        raise NotAsAsked(f"selector: {request.selector!r} is not a valid CSS selector")
    if box is None:
        raise NotAsAsked(f"selector: {request.selector!r} matched no element of {request.url}")
    left, top = math.floor(box[0]), math.floor(box[1])
    width, height = math.ceil(box[2]) - left, math.ceil(box[3]) - top
    if width <= 0 or height <= 0:
        raise NotAsAsked(f"selector: {request.selector!r} matched an element with no size "
                         f"({width}x{height} CSS px)")
    return {"x": left, "y": top, "width": width, "height": height, "scale": 1}
