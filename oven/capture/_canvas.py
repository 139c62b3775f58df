"""Frames from the piece's own canvas: WebP (or JPEG) pictures the page encodes, no screenshot.

A piece that draws on one canvas filling the page is, pixel for pixel, that canvas over the
page's background. For a lossy WebP output its frames can then be the canvas's own WebP
(`toDataURL("image/webp", q)`, libwebp in the renderer), which the encoder assembles into the
animation as they are (webpmux): measured on `anim`, 16 frames at 640x360, 0.83-0.86 CPU-s a
grab against 1.18 for JPEG screenshots and ffmpeg's libwebp_anim, files 1-5 % smaller. What it
saves: the compositor's read-back and the browser process's screenshot encode (~0.13 s), the
GPU process (~0.08 s) and the whole ffmpeg run (~0.39 s, a tenth of it Debian's dynamic
loader); the renderer's WebP encode costs ~0.3 s more than its drawing alone.

For an MP4 the frames are the canvas's JPEG, whole (`toDataURL("image/jpeg", q)`): byte for
byte the JPEG screenshots of the same instants on the pieces measured, without the compositor's
read-back and the browser process's encode (see oven.encode.frame_format_for).

On the virtual clock every frame after the first is encoded with `toBlob` (the same encoder,
on Chromium's encoder threads, of the canvas as it was at the call) while the page is stepped on
to the next, at most three at a time (one from ~1 MP up); the bytes are handed over with later
answers, and each frame is written, in order, once they are there. The first is encoded at
once, which shows the encoder takes the canvas's whole size.

It is only taken when nothing else could be in the picture. A probe in an isolated world (the
page's scripts can neither see nor replace it, nor its toDataURL) checks that one canvas covers
the viewport at the viewport's device pixels, on top at every probed point, with no opacity,
filter, transform or blend on it or its ancestors, over a plain background colour; then the
first frame is taken both ways and compared, block by block, with the screenshot (which catches
what the probe cannot: a WebGL canvas whose drawing buffer is gone after compositing, a tainted
canvas, an overlay between the probed points). Any doubt: screenshots, as for every other page.
Each later frame checks that the canvas is still in the page and on top in its middle; DOM
drawn over the canvas elsewhere after the first frame is not seen.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

from PIL import Image, ImageChops

from oven import metrics
from oven.capture._clock import Step
from oven.capture._errors import BrowserGone
from oven.capture._slot import Slot

log = logging.getLogger(__name__)

WORLD = "oven-canvas-frames"
# The most device pixels canvas frames are taken of: a capture holds four more copies of the
# picture in the renderer (the composite, the video frame read from it and two pixel buffers,
# one of them the last frame's), five on the virtual clock (an encode in flight), 84 MB at this
# size,
# which must stay well inside a small host's page ceiling; larger captures take screenshots.
MAX_PIXELS = 4_200_000  # 2560x1600, or 1280x800 at density 2
# Mean difference of an 8x8 block, per channel (0..255), above which the canvas (as PNG) and
# the screenshot (JPEG q90) are taken to show different pictures: the JPEG's blocks differ from
# the exact ones by ~1-4; a box over the canvas moves its blocks by 30-200.
_BLOCK = 8
_MAX_BLOCK_DIFFERENCE = 16
PIXEL_READS = ("video_frame", "image_data")  # how a WebP frame's pixels were read, for its box

_PROBE_JS = r"""
(() => {
  const W = innerWidth, H = innerHeight, dpr = devicePixelRatio;
  const c = document.elementFromPoint(W / 2, H / 2);
  if (!(c instanceof HTMLCanvasElement)) return "the middle of the page is not a canvas";
  const r = c.getBoundingClientRect();
  if (Math.abs(r.left) > 0.5 || Math.abs(r.top) > 0.5 || Math.abs(r.width - W) > 0.5
      || Math.abs(r.height - H) > 0.5) return "the canvas does not fill the viewport";
  const pw = Math.round(W * dpr), ph = Math.round(H * dpr);
  if (c.width !== pw || c.height !== ph)
    return `the canvas is ${c.width}x${c.height} pixels, the viewport ${pw}x${ph}`;
  const xs = [2, W / 4, W / 2, 3 * W / 4, W - 2], ys = [2, H / 4, H / 2, 3 * H / 4, H - 2];
  for (const x of xs) for (const y of ys)
    if (document.elementFromPoint(x, y) !== c) return "something is drawn over the canvas";
  let background = null;
  for (let e = c; e; e = e.parentElement) {
    const s = getComputedStyle(e);
    if (s.opacity !== "1" || s.filter !== "none" || s.mixBlendMode !== "normal"
        || s.visibility !== "visible" || (e === c && s.transform !== "none"))
      return "the canvas is drawn with an effect";
    if (s.backgroundImage !== "none") return "a background image behind the canvas";
    if (background === null && !/rgba\(.*, 0\)$/.test(s.backgroundColor)
        && s.backgroundColor !== "transparent") {
      if (/^rgba\(/.test(s.backgroundColor)) return "a translucent background colour";
      background = s.backgroundColor;
    }
  }
  const scratch = document.createElement("canvas");
  scratch.width = c.width; scratch.height = c.height;
  const g = scratch.getContext("2d", { alpha: false });
  const fill = background || "#ffffff";
  // The page's canvas over its background, as the compositor shows it; opaque, so no alpha.
  const compose = () => {
    g.globalCompositeOperation = "copy"; g.fillStyle = fill; g.fillRect(0, 0, pw, ph);
    g.globalCompositeOperation = "source-over"; g.drawImage(c, 0, 0);
  };
  const crop = document.createElement("canvas"), cg = crop.getContext("2d", { alpha: false });
  let last = null;  // the previous delta frame's pixels
  // The composite's pixels, read into two buffers in turn (one is `last`): getImageData would
  // leave a new ~0.9 MB buffer a frame in Blink's heap, which only a full collection frees
  // (~12 MB more of the renderer at the peak of a 16-frame capture). getImageData only where
  // VideoFrame cannot read the canvas.
  const buffers = [];
  let turn = 0, videoFrames = typeof VideoFrame === "function", read = "";
  const pixels = async () => {
    if (videoFrames) {
      let f = null;
      try {
        f = new VideoFrame(scratch, { timestamp: 0 });
        const size = f.allocationSize({ format: "RGBA" });
        if (size !== pw * ph * 4) throw new Error("unexpected layout");
        if (buffers.length === 0) buffers.push(new Uint8Array(size), new Uint8Array(size));
        turn ^= 1;
        await f.copyTo(buffers[turn], { format: "RGBA" });
        read = "video_frame";
        return new Uint32Array(buffers[turn].buffer);
      } catch (e) {
        videoFrames = false;
      } finally {
        if (f !== null) f.close();
      }
    }
    read = "image_data";
    return new Uint32Array(g.getImageData(0, 0, pw, ph).data.buffer);
  };
  // The box of pixels that differ from the last frame, its corner on even pixels (WebP frame
  // offsets are even); null when none differ.
  const changed = (a, b) => {
    let top = 0, bottom = ph - 1;
    const rowSame = (y) => {
      for (let i = y * pw, e = i + pw; i < e; i++) if (a[i] !== b[i]) return false;
      return true;
    };
    while (top < ph && rowSame(top)) top++;
    if (top === ph) return null;
    while (rowSame(bottom)) bottom--;
    let left = pw, right = -1;
    for (let y = top; y <= bottom; y++) {
      const row = y * pw;
      for (let x = 0; x < left; x++) if (a[row + x] !== b[row + x]) { left = x; break; }
      for (let x = pw - 1; x > right; x--) if (a[row + x] !== b[row + x]) { right = x; break; }
    }
    left &= ~1; top &= ~1;
    return { x: left, y: top, w: right + 1 - left, h: bottom + 1 - top };
  };
  // Encodes handed to Chromium's encoder threads (toBlob: the canvas as it is at the call, so
  // the crop can be drawn again at once): the page's thread takes the next frame meanwhile.
  // At most three at once, fewer for large canvases: each holds a copy of its picture until
  // encoded (one from ~1 MP up, so a capture's peak grows by at most one picture).
  const IN_FLIGHT = Math.max(1, Math.min(3, Math.floor(1000000 / (pw * ph))));
  const encoded = new Map();  // id -> data URL (null: the encode failed), not yet handed over
  const inFlight = new Set();
  let encodes = 0;
  const encodeLater = (canvas, type, quality) => {
    const id = ++encodes;
    let blobbed;
    const blob = new Promise((resolve) => { blobbed = resolve; });
    canvas.toBlob(blobbed, type, quality);  // throws here when the canvas is tainted
    const done = blob.then((b) => b === null || b.type !== type ? null : new Promise((resolve) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => resolve(null);
      reader.readAsDataURL(b);
    })).then((url) => { encoded.set(id, url); inFlight.delete(done); });
    inFlight.add(done);
    return id;
  };
  const handOver = () => {
    const out = Object.fromEntries(encoded);
    encoded.clear();
    return out;
  };
  window.__ovenCanvasEncoded = async () => {
    while (inFlight.size) await Promise.all([...inFlight]);
    return handOver();
  };
  // `later`: the picture's encode id instead of its data URL, which a later answer (`done`) or
  // __ovenCanvasEncoded hands over.
  const picture = async (canvas, x, y, type, quality, later, more) => {
    if (!later) return { x, y, url: canvas.toDataURL(type, quality), ...more };
    while (inFlight.size >= IN_FLIGHT) await Promise.race([...inFlight]);
    return { x, y, id: encodeLater(canvas, type, quality), done: handOver(), ...more };
  };
  window.__ovenCanvasFrame = async (type, quality, delta, later) => {
    // A page that swaps or covers its canvas midway: screenshots from here on.
    if (!c.isConnected || document.elementFromPoint(W / 2, H / 2) !== c) return null;
    compose();
    if (!delta) return await picture(scratch, 0, 0, type, quality, later, {});
    const now = await pixels();
    const box = last === null ? { x: 0, y: 0, w: pw, h: ph } : changed(last, now);
    last = now;
    if (box === null) return { same: true, read, done: handOver() };
    if (box.w * box.h > 0.8 * pw * ph)
      return await picture(scratch, 0, 0, type, quality, later, { read });
    crop.width = box.w; crop.height = box.h;
    cg.drawImage(scratch, box.x, box.y, box.w, box.h, 0, 0, box.w, box.h);
    return await picture(crop, box.x, box.y, type, quality, later, { read });
  };
  return "";
})()
"""


@dataclass(frozen=True, slots=True)
class CanvasPicture:
    """WebP (or PNG) bytes of the canvas, or of the box of it that changed, and where it goes;
    or, while its encode runs, that encode's id (CanvasFrames.encoded() hands the bytes over)."""

    data: bytes | None
    x: int
    y: int
    encode: int = 0


class CanvasFrames:
    """The probe's isolated world on one page, and its frames as WebP (each the box that
    changed) or JPEG (whole) bytes."""

    def __init__(self, slot: Slot, context_id: int, media: Literal["webp", "jpeg"],
                 quality: int) -> None:
        self._slot = slot
        self._context_id = context_id
        self._type = f"image/{media}"
        self._quality = quality / 100
        self.stepped = False  # whether the page's clock took the step of the last frame()
        self._encoded: dict[int, bytes | None] = {}  # finished encodes (None: it failed)

    @classmethod
    async def open(cls, slot: Slot, media: Literal["webp", "jpeg"], quality: int
                   ) -> CanvasFrames | None:
        """Frames from the page's canvas, or None (logged why) when it is not the picture."""
        tree = await slot.cdp.send("Page.getFrameTree")
        world = await slot.cdp.send("Page.createIsolatedWorld", {
            "frameId": tree["frameTree"]["frame"]["id"], "worldName": WORLD,
        })
        frames = cls(slot, world["executionContextId"], media, quality)
        try:
            why = await frames._evaluate(_PROBE_JS)
        except CanvasError as exc:  # a document the probe cannot read as a page
            why = f"the probe failed: {exc}"
        if why:
            log.debug("screenshots, not canvas frames: %s", why)
            return None
        return frames

    async def frame(self, step: Step | None = None, *, later: bool = False
                    ) -> CanvasPicture | Literal["same"] | None:
        """As WebP: what changed on the canvas since the last frame, placed at its offset (the
        whole canvas first, and whenever most of it changed), "same" when nothing did. As JPEG:
        the whole canvas (the encoder finds what changed). None if the canvas is no longer the
        picture (swapped, or covered in the middle) or cannot be read (tainted by a
        cross-origin image, a size the encoder refuses: toDataURL then throws or answers
        PNG). `step` is sent first, in the same call; `stepped` then says whether the page's
        clock took it (if not, the caller steps the page itself). `later`: the picture is
        encoded on Chromium's encoder threads while the page goes on, and CanvasPicture holds
        the encode's id for encoded(); the first frame is encoded at once, which shows the
        encoder takes the canvas's whole size (every later picture is at most that)."""
        return await self._picture(self._type, self._quality,
                                   delta=self._type == "image/webp", step=step, later=later)

    async def encoded(self, encode: int) -> bytes | None:
        """The bytes of a frame() whose encode was still running (waits for every encode in
        flight); None if its encode failed."""
        if encode not in self._encoded:
            try:
                done = await self._evaluate("window.__ovenCanvasEncoded()")
            except CanvasError as exc:
                raise BrowserGone(f"the canvas frames' encodes were lost: {exc}") from exc
            self._take(done)
        return self._encoded.pop(encode, None)

    def has_encoded(self, encode: int) -> bool:
        """Whether that encode's bytes (or its failure) were handed over already."""
        return encode in self._encoded

    def _take(self, done: Any) -> None:
        if not isinstance(done, dict):
            return
        for key, url in done.items():
            data = None
            if isinstance(url, str) and url.startswith(f"data:{self._type};base64,"):
                data = base64.b64decode(url.split(",", 1)[1])
            with contextlib.suppress(ValueError):
                self._encoded[int(key)] = data

    async def exact_frame(self) -> bytes | None:
        """The canvas now as PNG, to check it against a screenshot whatever quality is asked."""
        picture = await self._picture("image/png", None, delta=False)
        return picture.data if isinstance(picture, CanvasPicture) else None

    async def _picture(self, media_type: str, quality: float | None, *, delta: bool,
                       step: Step | None = None, later: bool = False
                       ) -> CanvasPicture | Literal["same"] | None:
        args = (f"{media_type!r}, {quality or 'undefined'}, {'true' if delta else 'false'}, "
                f"{'true' if later else 'false'}")
        # The step is a cancelable event the clock's listener (main world) runs synchronously
        # and cancels; dispatchEvent answers false then.
        stepped = "false" if step is None else (
            f"!document.dispatchEvent(new CustomEvent({json.dumps(step.event)}, "
            f"{{detail: {step.detail!r}, cancelable: true}}))")
        asked = "false" if step is None else "true"
        call = (f"(async () => {{ const stepped = {stepped}; if ({asked} && !stepped) "
                f"return {{ stepped }}; try {{ return {{ stepped, frame: await "
                f"window.__ovenCanvasFrame({args}) }}; }} catch (e) {{ return {{ stepped, "
                f"error: String(e) }}; }} }})()")
        self.stepped = False
        try:
            outcome = await self._evaluate(call)
        except CanvasError as exc:
            log.debug("screenshots, not canvas frames: %s", exc)
            return None
        if not isinstance(outcome, dict):
            return None
        self.stepped = outcome.get("stepped") is True
        if step is not None and not self.stepped and "frame" not in outcome:
            # Nothing listened (the page dropped its listeners): stepped through its world,
            # then the frame taken.
            await self._slot.page.evaluate(step.expression)
            picture = await self._picture(media_type, quality, delta=delta, later=later)
            self.stepped = True
            return picture
        if "error" in outcome:
            log.debug("screenshots, not canvas frames: %s", outcome["error"])
            return None
        answer = outcome.get("frame")
        if not isinstance(answer, dict):
            return None
        if answer.get("read") in PIXEL_READS:
            metrics.CANVAS_PIXEL_READS.labels(how=answer["read"]).inc()
        self._take(answer.get("done"))
        if answer.get("same") is True:
            return "same"
        url, x, y = answer.get("url"), answer.get("x"), answer.get("y")
        if later:
            encode = answer.get("id")
            if not isinstance(encode, int) or not isinstance(x, int) or not isinstance(y, int):
                return None
            return CanvasPicture(None, x, y, encode)
        prefix = f"data:{media_type};base64,"
        if (not isinstance(url, str) or not url.startswith(prefix) or not isinstance(x, int)
                or not isinstance(y, int)):
            return None
        return CanvasPicture(base64.b64decode(url[len(prefix):]), x, y)

    async def _evaluate(self, expression: str) -> Any:
        answer = await self._slot.cdp.send("Runtime.evaluate", {
            "expression": expression, "contextId": self._context_id, "returnByValue": True,
            "awaitPromise": True,
        })
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            raise CanvasError(details.get("exception", {}).get("description") or details["text"])
        return answer["result"].get("value")


class CanvasError(Exception):
    """The probe or a frame threw in the page."""


def same_picture(canvas: bytes, screenshot: bytes) -> bool:
    """Whether the canvas frame shows what the screenshot of the same instant shows: the same
    size, and no 8x8 block whose mean differs by more than lossy coding explains."""
    with Image.open(io.BytesIO(canvas)) as a, Image.open(io.BytesIO(screenshot)) as b:
        if a.size != b.size:
            return False
        size = (max(1, a.width // _BLOCK), max(1, a.height // _BLOCK))
        a_blocks = a.convert("RGB").resize(size, Image.Resampling.BOX)
        b_blocks = b.convert("RGB").resize(size, Image.Resampling.BOX)
    extrema = ImageChops.difference(a_blocks, b_blocks).getextrema()
    return all(high <= _MAX_BLOCK_DIFFERENCE for _, high in extrema)  # type: ignore[misc]
