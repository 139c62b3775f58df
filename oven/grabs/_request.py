"""A grab request as clients send it, validated at the edge, and its capture key."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from oven.capture import (
    MAX_DELAY_MS,
    MAX_EXPRESSION,
    MAX_FPS,
    MAX_INJECT_BYTES,
    MIN_FPS,
    CaptureRequest,
    Flag,
    GuardMode,
)
from oven.encode import (
    MAX_UPSCALE,
    EncodeRequest,
    EncoderSettings,
    Format,
    animated_formats,
    frame_format_for,
)
from oven.grabs._settings import LimitsSettings
from oven.lanes import Lane

# A piece's name, or a KidLisp code written `$code` (its page comes from [pieces]
# code_template). Neither can carry a character that means something in a URL or a template;
# \Z, not $, which would also match before a final newline.
PIECE_NAME = re.compile(r"^(?:[a-z0-9][a-z0-9_-]{0,63}|\$[A-Za-z0-9]{1,32})\Z")


class GrabRequest(BaseModel):
    """POST /grabs body. Exactly one of `piece` and `url`."""

    model_config = ConfigDict(extra="forbid")

    piece: str | None = Field(None, description="Name of a piece (lowercase, digits, - and _).")
    url: str | None = Field(None, description="A page URL from an allowed origin.")
    format: Format = Field(Format.PNG)
    width: int = Field(640, ge=1, description="Viewport width in CSS pixels.")
    height: int = Field(360, ge=1, description="Viewport height in CSS pixels.")
    density: float = Field(1.0, ge=1, description="Device pixel ratio.")
    frames: int = Field(1, ge=1, description="1 for a still; more for an animation.")
    fps: float = Field(20.0, ge=MIN_FPS,
                       description="Frames per second of the capture and output.")
    duration: float | None = Field(
        None, gt=0, description="Seconds to capture; sets frames = duration * fps."
    )
    playback_fps: float | None = Field(
        None, ge=MIN_FPS, le=MAX_FPS, allow_inf_nan=False,
        description="Frames per second the output plays at (default: fps). fps sets how far "
        "apart in page time frames are taken: fps 7.5 played at 15 is a time-lapse twice as "
        "fast. Ignored for a still.")
    viewport_scale: int = Field(
        1, ge=1, le=MAX_UPSCALE,
        description="Art-pixel size: the page is laid out at width/scale x height/scale CSS px "
        "and every frame scaled up by nearest neighbour to width x height pixels (both "
        "multiples of the scale; density 1).")
    clock: Literal["real", "virtual"] = Field("real")
    lane: Lane = Field(Lane.INTERACTIVE)
    callback_url: str | None = Field(
        None, max_length=2048,
        description="POSTed the result when the job is final (HMAC-signed; allowed origins "
        "only, see [webhooks]). Not part of the capture key.",
    )

    # How the page is made ready, and how it is captured (see README "Ready rules" and
    # "Capture options"). Each is part of the capture key.
    wait_for: str | None = Field(
        None, min_length=1, max_length=MAX_EXPRESSION,
        description="A JS expression: capture once it is true (rule 'expression').")
    wait_for_selector: str | None = Field(
        None, min_length=1, max_length=MAX_EXPRESSION,
        description="A CSS selector: capture once an element matches (rule 'selector').")
    delay_ms: int = Field(
        0, ge=0, le=MAX_DELAY_MS,
        description="Wait this long after ready (page time on the virtual clock).")
    selector: str | None = Field(
        None, min_length=1, max_length=MAX_EXPRESSION,
        description="Capture only this element's box (a canvas gives its own size).")
    background: Literal["page", "transparent"] = Field(
        "page", description="transparent: what the page leaves unpainted keeps alpha (png, webp).")
    color_scheme: Literal["light", "dark", "no-preference"] | None = Field(
        None, description="prefers-color-scheme for the page.")
    reduced_motion: bool = Field(False, description="prefers-reduced-motion: reduce.")
    quality: int | None = Field(
        None, ge=1, le=100, description="Output quality 1..100 for jpeg, webp and mp4.")
    scripts: list[str] = Field(
        default_factory=list, max_length=16,
        description=f"JS run in the page after it loads, before ready (with styles at most "
        f"{MAX_INJECT_BYTES} bytes).")
    styles: list[str] = Field(default_factory=list, max_length=16,
                              description="CSS added to the page after it loads.")
    reject: list[Flag] = Field(
        default_factory=list,
        description="Fail instead of storing a capture flagged any of these (blank, dud, frozen).")

    @model_validator(mode="after")
    def _shape(self) -> GrabRequest:
        if (self.piece is None) == (self.url is None):
            raise ValueError("give exactly one of 'piece' and 'url'")
        if self.piece is not None and not PIECE_NAME.match(self.piece):
            raise ValueError(
                "piece: names are 1-64 characters of a-z, 0-9, '-' and '_', starting with a "
                "letter or digit, or a KidLisp code: '$' and 1-32 letters or digits"
            )
        if self.duration is not None:
            if not math.isfinite(self.duration * self.fps) or self.duration * self.fps > 1e6:
                raise ValueError("duration: duration * fps must be at most 1000000 frames")
            self.frames = max(1, round(self.duration * self.fps))
            self.duration = None
        if self.frames > 1 and not self.format.animates:
            *most, last = [fmt.value for fmt in animated_formats()]
            raise ValueError(
                f"format: {self.format.value} is a still format; "
                f"use {', '.join(most)} or {last} for frames > 1"
            )
        if self.wait_for is not None and self.wait_for_selector is not None:
            raise ValueError("give at most one of 'wait_for' and 'wait_for_selector'")
        if sum(len(text.encode()) for text in [*self.scripts, *self.styles]) > MAX_INJECT_BYTES:
            raise ValueError(f"scripts and styles: at most {MAX_INJECT_BYTES} bytes together")
        if self.background == "transparent" and not self.format.keeps_alpha:
            raise ValueError(f"background: {self.format.value} has no alpha channel; "
                             "'transparent' needs png or webp")
        if self.quality is not None and not self.format.lossy:
            raise ValueError(f"quality: {self.format.value} is lossless; quality applies to "
                             "jpeg, webp and mp4")
        self.reject = sorted(set(self.reject))
        return self

    @field_validator("playback_fps", "viewport_scale", mode="before")
    @classmethod
    def _not_a_flag(cls, value: object) -> object:
        # Lax mode would read true as 1: a number asked for as a flag is a client's mistake.
        if isinstance(value, bool):
            raise ValueError("a number, not true or false")
        return value

    @model_validator(mode="after")
    def _time_and_scale(self) -> GrabRequest:
        # After _shape, which turns a duration into frames.
        if self.playback_fps is not None and (self.frames == 1 or self.playback_fps == self.fps):
            # No playback (a still) or the capture rate: the same file as not asking, so the
            # same capture key.
            self.playback_fps = None
        fastest = self.format.max_playback_fps
        if self.frames > 1 and fastest is not None and (self.playback_fps or self.fps) > fastest:
            field = "fps" if self.playback_fps is None else "playback_fps"
            raise ValueError(
                f"{field}: a {self.format.value} plays at most {fastest:g} frames a second (its "
                "delays are whole centiseconds, and browsers play one under 2 cs as 10 cs); "
                "use webp or mp4 to play faster")
        scale = self.viewport_scale
        if scale == 1:
            return self
        if self.density != 1:
            raise ValueError(
                f"density: give density 1 with viewport_scale {scale}: viewport_scale repeats "
                f"each CSS pixel {scale}x{scale} times, density would render detail inside it "
                "(a piece's own pixel size belongs in its URL)")
        for name, side in (("width", self.width), ("height", self.height)):
            if side % scale:
                below, above = side // scale * scale, (side // scale + 1) * scale
                nearest = f"{below} or {above}" if below else f"{above}"
                raise ValueError(
                    f"{name}: {side} is not a multiple of {scale} (viewport_scale): the page is "
                    f"laid out at {name}/{scale} CSS px and each scaled to {scale}x{scale} "
                    f"pixels; use {nearest}")
        return self

    def limit_violations(self, limits: LimitsSettings) -> list[tuple[str, str]]:
        """(field, message) for each configured limit this request exceeds."""
        out = []
        if self.width > limits.max_width:
            out.append(("width", f"at most {limits.max_width}"))
        if self.height > limits.max_height:
            out.append(("height", f"at most {limits.max_height}"))
        if self.density > limits.max_density:
            out.append(("density", f"at most {limits.max_density:g}"))
        if self.frames > limits.max_frames:
            out.append(("frames", f"at most {limits.max_frames}"))
        if self.fps > limits.max_fps:
            out.append(("fps", f"at most {limits.max_fps:g}"))
        if self.playback_fps is not None and self.playback_fps > limits.max_fps:
            out.append(("playback_fps", f"at most {limits.max_fps:g}"))
        if self.frames / self.fps > limits.max_duration_s:
            out.append(("duration", f"frames / fps at most {limits.max_duration_s:g} s"))
        if self.delay_ms > limits.max_delay_ms:
            out.append(("delay_ms", f"at most {limits.max_delay_ms}"))
        return out

    @property
    def subject(self) -> str:
        return self.piece if self.piece is not None else str(self.url)

    def capture_request(self, target_url: str, *, guard: GuardMode,
                        encoder: EncoderSettings) -> CaptureRequest:
        """The capture this grab asks for: the one place a grab becomes a CaptureRequest,
        with the frames its output is cheapest made from (see oven.encode.frame_format_for)."""
        # Transparent pixels need frames that keep alpha; a still JPEG taken as it is must be
        # taken at the quality asked.
        # Scaled frames are PNG too: a JPEG frame smears art pixels before the upscale would
        # repeat them (and a frame 1/scale^2 the size costs Chromium little to compress).
        frame_format = ("png" if self.background == "transparent" or self.viewport_scale > 1
                        else frame_format_for(self.format, encoder, still=self.frames == 1))
        scale = self.viewport_scale
        return CaptureRequest(url=target_url, width=self.width // scale,
                              height=self.height // scale,
                              density=self.density, frames=self.frames, fps=self.fps,
                              clock=self.clock, guard=guard, frame_format=frame_format,
                              jpeg_quality=self.quality if self.frames == 1 else None,
                              webp_quality=(max(1, self.quality or encoder.webp_quality)
                                            if frame_format == "webp" else None),
                              wait_for=self.wait_for, wait_for_selector=self.wait_for_selector,
                              delay_ms=self.delay_ms, selector=self.selector,
                              background=self.background, color_scheme=self.color_scheme,
                              reduced_motion=self.reduced_motion, scripts=self.scripts,
                              styles=self.styles, reject=self.reject)

    def encode_request(self, frames: list[Path], out_path: Path,
                       offsets: list[tuple[int, int]] | None = None) -> EncodeRequest:
        """The encode of this grab's captured frames (and, for canvas frames, where each goes):
        the one place a grab becomes an EncodeRequest. Played at playback_fps (a time-lapse)
        and scaled up by nearest neighbour to width x height when viewport_scale > 1."""
        return EncodeRequest(frames=frames, fps=self.playback_fps or self.fps, format=self.format,
                             out_path=out_path, quality=self.quality,
                             upscale=self.viewport_scale, offsets=offsets or [])


# Fields that say how a grab is queued and delivered, not what is captured.
_NOT_CAPTURED = frozenset({"piece", "url", "lane", "callback_url", "duration"})


def capture_key(request: GrabRequest, target_url: str, render_version: str) -> str:
    """Everything that changes the output bytes, hashed: equal keys give identical results."""
    material = {
        "url": target_url,
        "format": request.format.value,
        "width": request.width,
        "height": request.height,
        "density": request.density,
        "frames": request.frames,
        "fps": request.fps,
        "clock": request.clock,
        "render": render_version,
    }
    # Every other field is a capture option: part of the key unless at its default, so results
    # cached before an option existed still answer the requests that do not use it (and a new
    # field joins the key without anyone having to remember to add it).
    for name, spec in GrabRequest.model_fields.items():
        if name in material or name in _NOT_CAPTURED:
            continue
        value = getattr(request, name)
        if value != spec.get_default(call_default_factory=True):
            material[name] = value
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:32]
