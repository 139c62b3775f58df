"""The old grab parameters, read into a GrabRequest's fields and the few the old routes add.

The old service read its query strings with `parseInt` and friends, so old clients send
numbers as strings, `skipCache=true` as a string, and parameters oven does not know. Each is
read strictly here (a 4xx JSON error naming the parameter), then handed to GrabRequest, whose
own rules and [limits] apply as they do to oven's own routes: one schema end to end.

What the old service made of them (its grabber.mjs and server.mjs), which old clients expect:
- its routes parsed `fps` and `duration` with parseInt, so the default 7.5 fps was 7, and took
  ceil(duration / 1000 * fps) frames;
- they never passed `playbackFps` on, so grabPiece played every animation at its default 15;
- the page was laid out at width x height CSS px at a device scale factor of
  `viewportScale ?? density`, with `density` in the piece's URL; a still came out
  width * (viewportScale ?? density) pixels wide, an animation width * density (its frames
  resized by nearest neighbour). Its routes never read `viewportScale` either: it is taken here
  as grabPiece took it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from oven.encode import MAX_UPSCALE
from oven.grabs import Lane
from oven.http import ApiError

# The old service's bounds for a grab's sides, in CSS pixels.
MIN_SIDE, MAX_SIDE = 32, 1000
OLD_DURATION_MS = 12_000
OLD_FPS = 7.5  # as the old routes wrote it; parseInt made it 7, as every fps they took
OLD_PLAYBACK_FPS = 15.0
# Beyond this a duration is no request at all (oven's [limits] refuse far less, naming frames).
_MOST_FRAMES = 1_000_000
STILL_FORMATS = frozenset({"png", "jpeg"})
LOSSLESS_FORMATS = frozenset({"png", "gif"})
# keep: a keep's thumbnail jumps the queue (the interactive lane and its reserved page slot);
# the other sources the old service named are bulk work. Without `source`, a waiting client
# is interactive, as on oven's own routes.
SOURCE_LANES = {"keep": Lane.INTERACTIVE, "manual": Lane.BACKGROUND, "api": Lane.BACKGROUND,
                "news": Lane.BACKGROUND}
CACHE_KEY = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_WHOLE = re.compile(r"^[0-9]{1,9}$")
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


@dataclass(frozen=True)
class OldGrab:
    """A grab as an old route asked for it."""

    data: dict[str, Any]  # GrabRequest fields
    skip_cache: bool
    cache_key: str | None


def side(name: str, raw: Any, *, least: int = MIN_SIDE, most: int = MAX_SIDE) -> int:
    """A side in pixels, least..most, from a path segment, a query value or JSON."""
    value = whole(name, raw)
    if not least <= value <= most:
        raise ApiError(422, f"{name}: from {least} to {most} pixels, got {value}")
    return value


def whole(name: str, raw: Any) -> int:
    if isinstance(raw, bool):
        raise ApiError(422, f"{name}: expected a whole number, got {raw!r}")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and _WHOLE.match(raw):
        return int(raw)
    raise ApiError(422, f"{name}: expected a whole number, got {_shown(raw)}")


def number(name: str, raw: Any) -> float:
    """A finite number from a string or JSON; NaN and infinities are refused here, since a
    comparison with NaN is false and would slip past every bound."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ApiError(422, f"{name}: expected a number, got {_shown(raw)}")
    try:
        value = float(raw) if not isinstance(raw, str) or len(raw) <= 32 else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ApiError(422, f"{name}: expected a finite number, got {_shown(raw)}")
    return value


def flag(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in _TRUE | _FALSE:
        return raw.lower() in _TRUE
    raise ApiError(422, f"{name}: true or false, got {_shown(raw)}")


def _shown(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 40 else text[:37] + "..."


def old_grab(fields: Mapping[str, Any], *, piece: Any, fmt: Any, width: int,
             height: int) -> OldGrab:
    """The grab an old route asks for: `fields` are its query parameters or JSON body."""
    if not isinstance(piece, str) or not piece:
        raise ApiError(422, "piece: a piece name or a KidLisp $code is required")
    if not isinstance(fmt, str):
        raise ApiError(422, f"format: expected a name, got {_shown(fmt)}")
    data: dict[str, Any] = {"piece": piece, "format": fmt,
                            **_sized(fields, still=fmt in STILL_FORMATS, width=width,
                                     height=height)}
    # A still leaves fps at oven's default unless asked (it is part of the capture key), so
    # a still grabbed here and one grabbed through oven's own routes share a cached result.
    if "fps" in fields or fmt not in STILL_FORMATS:
        data["fps"] = _old_fps(fields.get("fps", OLD_FPS))
    if "frames" in fields:  # oven's own parameter: an exact count wins over a duration
        data["frames"] = whole("frames", fields["frames"])
    elif fmt not in STILL_FORMATS:
        data["frames"] = _old_frames(fields.get("duration", OLD_DURATION_MS), data["fps"])
    if "playbackFps" in fields:  # captured at fps, played at playbackFps: a time-lapse
        data["playback_fps"] = number("playbackFps", fields["playbackFps"])
    elif fmt not in STILL_FORMATS and "frames" not in fields:
        # The old default, for the old clients' requests; one that counts its frames is
        # oven's own and plays at its capture rate, as POST /grabs does (the same request
        # there and here is one capture key, one job).
        data["playback_fps"] = OLD_PLAYBACK_FPS
    # The old service took a quality for every format and ignored it where it meant nothing;
    # oven refuses that, so it is dropped here for the lossless ones.
    if "quality" in fields and fmt not in LOSSLESS_FORMATS:
        data["quality"] = whole("quality", fields["quality"])
    if "clock" in fields:
        data["clock"] = fields["clock"]
    if "source" in fields:
        source = fields["source"]
        if not isinstance(source, str) or source not in SOURCE_LANES:
            raise ApiError(422, f"source: one of {', '.join(SOURCE_LANES)}, got {_shown(source)}")
        data["lane"] = SOURCE_LANES[source]
    cache_key = fields.get("cacheKey")
    if cache_key is not None and (not isinstance(cache_key, str) or
                                  not CACHE_KEY.match(cache_key)):
        raise ApiError(422, "cacheKey: 1-128 characters of letters, digits, '-' and '_'")
    skip = flag("skipCache", fields["skipCache"]) if "skipCache" in fields else False
    return OldGrab(data=data, skip_cache=skip, cache_key=cache_key or None)


def _old_fps(raw: Any) -> int:
    fps = math.trunc(number("fps", raw))  # parseInt, as the old routes read it
    if fps < 1:
        raise ApiError(422, f"fps: read as a whole number of frames a second (the old service's "
                            f"parseInt), at least 1; {_shown(raw)} is {fps}")
    return fps


def _old_frames(raw_ms: Any, fps: int) -> int:
    duration_ms = math.trunc(number("duration", raw_ms))
    if duration_ms <= 0:
        raise ApiError(422, f"duration: milliseconds, more than 0, got {_shown(raw_ms)}")
    frames = -(-duration_ms * fps // 1000)  # ceil, in whole numbers: no rounding error
    if frames > _MOST_FRAMES:
        raise ApiError(422, f"duration: {duration_ms} ms at {fps} fps is {frames} frames")
    return frames


def _sized(fields: Mapping[str, Any], *, still: bool, width: int,
           height: int) -> dict[str, Any]:
    """oven's width, height, density and viewport_scale for the old output size: the page laid
    out at width x height CSS px and `density` in its URL, as the old service had them."""
    sized: dict[str, Any] = {"width": width, "height": height}
    density = number("density", fields["density"]) if "density" in fields else None
    scale = None
    if "viewportScale" in fields:
        scale = whole("viewportScale", fields["viewportScale"])
        if not 1 <= scale <= MAX_UPSCALE:
            raise ApiError(422, f"viewportScale: from 1 to {MAX_UPSCALE}, got {scale}")
    if not still or scale is None or scale == (density or 1):
        # Chromium's device scale factor is `density`, as it was: width * density pixels, and
        # the template's {density} carries it to the piece. An animation was resized to
        # width * density whatever viewportScale it was taken at.
        if density is not None:
            sized["density"] = density
        return sized
    if density not in (None, 1):
        # The page's density (its URL) and the output's scale differ: oven fills {density}
        # from the grab's own density, which viewport_scale needs to be 1.
        raise ApiError(422, f"viewportScale: a still at viewportScale {scale} and density "
                            f"{density:g} (the piece's URL) cannot be made here; give "
                            "viewportScale equal to density, or density 1")
    # Art pixels: laid out at width x height CSS px, each repeated scale x scale times.
    return {"width": width * scale, "height": height * scale, "viewport_scale": scale}
