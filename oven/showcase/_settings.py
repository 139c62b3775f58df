"""The `[showcase]` config section: app-store screenshot presets and OG images."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_STRICT = ConfigDict(extra="forbid")
PRESET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class Preset(BaseModel):
    """One screenshot size: `width` x `height` device pixels, rendered at `density`.

    The browser viewport is width/density x height/density CSS pixels, which keeps large
    screenshots (2560 px) inside [limits] max_width/max_height and renders pieces the way a
    high-density device would.
    """

    model_config = _STRICT

    width: int = Field(ge=16, le=8192, description="Width of the PNG in pixels.")
    height: int = Field(ge=16, le=8192, description="Height of the PNG in pixels.")
    density: int = Field(1, ge=1, le=4, description="Device pixel ratio of the capture.")
    category: str | None = Field(
        None, pattern=PRESET_NAME.pattern, description="The folder it goes in, in the old "
        "service's ZIP of every preset (GET /app-screenshots/download/{piece}). Unset: the "
        "preset name up to its first '-' (phone-portrait: phone).")

    @model_validator(mode="after")
    def _divisible(self) -> Preset:
        if self.width % self.density or self.height % self.density:
            raise ValueError(f"width and height must be multiples of density ({self.density}), "
                             f"or the PNG would not be {self.width}x{self.height}")
        return self

    @property
    def css_size(self) -> tuple[int, int]:
        return self.width // self.density, self.height // self.density


def _default_presets() -> dict[str, Preset]:
    return {
        "phone-portrait": Preset(width=1080, height=1920, density=3),
        "phone-landscape": Preset(width=1920, height=1080, density=3),
        "tablet7-portrait": Preset(width=1200, height=1920, density=2),
        "tablet7-landscape": Preset(width=1920, height=1200, density=2),
        "tablet10-portrait": Preset(width=1600, height=2560, density=2),
        "tablet10-landscape": Preset(width=2560, height=1600, density=2),
    }


class ShowcaseSettings(BaseModel):
    model_config = _STRICT

    presets: dict[str, Preset] = Field(
        default_factory=_default_presets,
        description="App-store screenshot sizes by name (GET /app-screenshots/{preset}/...).",
    )
    og_pieces: list[str] = Field(default_factory=lambda: ["still", "anim", "clock"],
                                 min_length=1, max_length=16,
                                 description="Pieces shown in OG mosaics and filmstrips.")
    og_width: int = Field(1200, ge=64, le=4096, description="Width of OG images.")
    og_height: int = Field(630, ge=64, le=4096, description="Height of OG images.")
    og_cache_dir: Path = Field(Path("og"), description="Where rendered OG images are kept "
                               "(one file per layout and UTC day; relative to data_dir).")
    og_max_age_s: int = Field(3600, ge=0, le=86400,
                              description="Cache-Control max-age of today's OG image.")
    og_stale_max_age_s: int = Field(
        60, ge=0, le=86400,
        description="max-age of an older image served while today's renders (short, so caches "
        "come back for the new one soon).")
    og_stale_while_revalidate_s: int = Field(
        86400, ge=0, le=7 * 86400,
        description="stale-while-revalidate sent with every OG image.")
    og_wait_timeout_s: float = Field(
        90.0, gt=0, le=600,
        description="How long a request waits for a render when no OG image exists at all.")
    og_retry_s: float = Field(
        60.0, ge=0, le=86400,
        description="After a failed render, how long before a request starts another.")

    def category_of(self, name: str) -> str:
        """The category of preset `name`: configured, or its name up to the first '-'."""
        return self.presets[name].category or name.split("-", 1)[0]

    @field_validator("presets")
    @classmethod
    def _preset_names(cls, presets: dict[str, Preset]) -> dict[str, Preset]:
        if not presets:
            raise ValueError("give at least one preset")
        for name in presets:
            if not PRESET_NAME.match(name):
                raise ValueError(f"preset name {name!r}: use 1-64 characters of a-z, 0-9, "
                                 "'-' and '_'")
        return presets
