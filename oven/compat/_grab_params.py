"""The old grab parameters, read into a GrabRequest's fields and the few the old routes add.

The old service read its query strings with `parseInt` and friends, so old clients send
numbers as strings, `skipCache=true` as a string, and parameters oven does not know. Each is
read strictly here (a 4xx JSON error naming the parameter), then handed to GrabRequest, whose
own rules and [limits] apply as they do to oven's own routes: one schema end to end.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from oven.grabs import Lane
from oven.http import ApiError

# The old service's bounds for a grab's sides, in CSS pixels.
MIN_SIDE, MAX_SIDE = 32, 1000
OLD_DURATION_MS = 12_000.0
OLD_FPS = 7.5
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
    data: dict[str, Any] = {"piece": piece, "format": fmt, "width": width, "height": height}
    # A still leaves fps at oven's default unless asked (it is part of the capture key), so
    # a still grabbed here and one grabbed through oven's own routes share a cached result.
    if "fps" in fields or fmt not in STILL_FORMATS:
        data["fps"] = number("fps", fields["fps"]) if "fps" in fields else OLD_FPS
    if "frames" in fields:  # oven's own parameter: an exact count wins over a duration
        data["frames"] = whole("frames", fields["frames"])
    elif fmt not in STILL_FORMATS:
        duration_ms = (number("duration", fields["duration"]) if "duration" in fields
                       else OLD_DURATION_MS)
        if duration_ms <= 0:
            raise ApiError(422, f"duration: milliseconds, more than 0, got {duration_ms:g}")
        data["duration"] = duration_ms / 1000
    if "playbackFps" in fields:  # captured at fps, played at playbackFps: a time-lapse
        data["playback_fps"] = number("playbackFps", fields["playbackFps"])
    if "viewportScale" in fields:  # art pixels: laid out at 1/scale, scaled up by nearest
        data["viewport_scale"] = whole("viewportScale", fields["viewportScale"])
    if "density" in fields:
        data["density"] = number("density", fields["density"])
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
