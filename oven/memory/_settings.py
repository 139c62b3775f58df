"""The memory section: budget, watermarks, sampling cadence and the rules that name components."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Component = Literal["oven", "browser", "renderer", "driver", "encoder", "pty", "other"]
COMPONENTS: tuple[Component, ...] = (
    "oven", "browser", "renderer", "driver", "encoder", "pty", "other"
)

# The executable (first word of the command line) of a Chromium build: Debian's
# /usr/lib/chromium/chromium, Google's chrome, Playwright's headless_shell /
# chrome-headless-shell, and chrome_crashpad_handler.
_CHROMIUM_EXE = r"^(\S*/)?(chromium|chrome|headless_shell)[\w-]*(\s|$)"


class ComponentRule(BaseModel):
    """One pattern naming a component; rules are tried in order and the first match wins."""

    model_config = ConfigDict(extra="forbid")

    component: Component = Field(description="Component a matching process is counted under.")
    pattern: str = Field(
        min_length=1, description="Regular expression searched in the space-joined command line."
    )

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value


def default_rules() -> list[ComponentRule]:
    """Chromium renderers, the rest of Chromium, Playwright's node driver, ffmpeg.

    The root pid (oven itself) and owner-attributed processes (PTY children, ffmpeg) are named
    by the sampler, not by these rules; anything unmatched is "other".
    """
    return [
        ComponentRule(component="renderer", pattern=_CHROMIUM_EXE + r".*--type=renderer(\s|$)"),
        ComponentRule(component="browser", pattern=_CHROMIUM_EXE),
        ComponentRule(
            component="driver",
            pattern=r"driver/package/cli\.js|\brun-driver\b"
                    r"|(^|/)node(\s|$).*playwright|playwright\S*/node(\s|$)",
        ),
        ComponentRule(component="encoder", pattern=r"^(\S*/)?ffmpeg(\s|$)"),
    ]


class MemorySettings(BaseModel):
    """How oven measures its process tree and the budget that tree is kept under."""

    model_config = ConfigDict(extra="forbid")

    budget_bytes: int | None = Field(
        default=None,
        ge=16 * 1024 * 1024,
        description="Memory budget for the whole tree; unset: the cgroup limit if one is set, "
                    "else mem_total_share of MemTotal.",
    )
    mem_total_share: float = Field(
        default=0.8, ge=0.1, le=1.0,
        description="Share of MemTotal used as the budget when neither budget_bytes nor a "
                    "cgroup limit is set.",
    )
    soft_watermark: float = Field(
        default=0.80, ge=0.1, le=1.0,
        description="Share of the budget above which no new captures start.",
    )
    hard_watermark: float = Field(
        default=0.92, ge=0.1, le=1.0,
        description="Share of the budget above which the browser is recycled.",
    )
    cheap_interval_s: float = Field(
        default=0.25, ge=0.05, le=60.0,
        description="Seconds between cheap samples (statm RSS of every process, cgroup current).",
    )
    pss_interval_s: float = Field(
        default=3.0, ge=0.25, le=300.0,
        description="A full PSS rotation over the tree starts at most this often (seconds).",
    )
    pss_per_tick: int = Field(
        default=4, ge=1, le=256,
        description="Processes whose smaps_rollup (PSS, 0.6-15 ms each for Chromium) is read "
                    "per cheap tick.",
    )
    reserve_share: float = Field(
        default=0.1, ge=0.0, le=0.5,
        description="Share of a cgroup limit kept back from the budget for page cache and "
                    "slack (at least reserve_min_bytes): a budget equal to the limit has no "
                    "headroom, and cgroup v1 counts page cache against the limit.",
    )
    reserve_min_bytes: int = Field(
        default=128 * 1024 * 1024, ge=0,
        description="Smallest reserve kept back from a cgroup limit.",
    )
    ceiling: Literal["auto", "cgroup", "poll", "off"] = Field(
        default="auto",
        description="How each page is held to its ceiling: cgroup (a cgroup per renderer "
                    "below a cgroup for the browser, below oven's), poll (renderer RSS read at "
                    "ceiling_poll_interval_s, killed over the ceiling; V8 heap capped), auto "
                    "(cgroup where oven can make cgroups, else poll), off.",
    )
    page_ceiling_bytes: int | None = Field(
        default=None, ge=32 * 1024 * 1024,
        description="Memory one page (its renderer) may hold before it is killed and its job "
                    "failed; unset: the browser's share of the budget split between the pages "
                    "(at most 2 GiB).",
    )
    oven_reserve_bytes: int = Field(
        default=320 * 1024 * 1024, ge=0,
        description="Part of the budget kept for oven itself, the Playwright driver and "
                    "ffmpeg; the browser's cgroup gets the rest.",
    )
    page_cost_bytes: int = Field(
        default=192 * 1024 * 1024, ge=16 * 1024 * 1024,
        description="What one page costs while it captures (measured: a 1280x720 WebGL or "
                    "canvas piece); browser.pages = \"auto\" fits this many into the budget.",
    )
    ceiling_poll_interval_s: float = Field(
        default=0.02, ge=0.005, le=0.05,
        description="Seconds between reads of the renderers' process tree and RSS (>= 20 Hz).",
    )
    component_rules: list[ComponentRule] = Field(
        default_factory=default_rules,
        description="Command-line patterns naming components; first match wins, else 'other'.",
    )

    @model_validator(mode="after")
    def _watermarks_ordered(self) -> MemorySettings:
        if self.soft_watermark >= self.hard_watermark:
            raise ValueError(
                f"soft_watermark ({self.soft_watermark}) must be below hard_watermark "
                f"({self.hard_watermark})"
            )
        return self
