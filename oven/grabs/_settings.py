"""Settings of the grab queue, request limits and capture targets."""

from __future__ import annotations

from string import Formatter
from typing import Literal

from ada_url import URL
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from oven.capture import MAX_DELAY_MS, MAX_DENSITY, MAX_FPS, MAX_FRAMES, MAX_SIDE, MIN_FPS

_STRICT = ConfigDict(extra="forbid")


class QueueSettings(BaseModel):
    model_config = _STRICT

    max_queued: int = Field(200, ge=1, le=100_000, description="Jobs waiting before 429.")
    deadline_s: float = Field(
        120.0, gt=0, le=3600, description="A job's deadline, counted from admission."
    )
    max_attempts: int = Field(3, ge=1, le=10, description="Tries for transient failures.")
    interactive_reserved: int = Field(
        1, ge=0, le=16, description="Page slots only the interactive lane may use."
    )
    freeze_after: int = Field(3, ge=1, le=100, description="Failures in a row that freeze.")
    freeze_for_s: float = Field(600.0, ge=1, le=7 * 86400, description="How long a freeze lasts.")
    wait_timeout_s: float = Field(
        60.0, gt=0, le=600, description="How long GET /grab/... waits before answering 202."
    )
    upload_retry_s: float = Field(
        10.0, gt=0, le=3600, description="Interval between retries of upload_pending jobs."
    )
    recent_limit: int = Field(50, ge=1, le=1000, description="Finished jobs kept in memory.")


class LimitsSettings(BaseModel):
    """What a grab may ask, within the hard bounds of a capture (oven.capture's MAX_*): a limit
    above those would admit requests that capture refuses, failing them as oven's error."""

    model_config = _STRICT

    max_width: int = Field(1920, ge=16, le=MAX_SIDE)
    max_height: int = Field(1920, ge=16, le=MAX_SIDE)
    max_density: float = Field(3.0, ge=1, le=MAX_DENSITY)
    max_frames: int = Field(300, ge=1, le=MAX_FRAMES)
    max_fps: float = Field(MAX_FPS, ge=MIN_FPS, le=MAX_FPS)
    max_duration_s: float = Field(30.0, gt=0, le=600, description="frames / fps at most.")
    # Bounded well inside a job's deadline: a client's delay must never run a job out of time,
    # which would count against the piece (see the pipeline's CaptureTimeout rule).
    max_delay_ms: int = Field(5000, ge=0, le=MAX_DELAY_MS, description="delay_ms at most.")


# The fields each template may name. Decorations the old service put in a piece's URL (tv,
# nolabel, nogap, spoofaudio) are written literally into the template.
TEMPLATE_FIELDS = {"url_template": ("piece", "density"), "code_template": ("code", "density")}


def check_template(name: str, template: str) -> str:
    """A template names only its own fields, plainly: `{piece.__class__}`, `{piece[0]}`,
    `{piece!r}` or `{piece:>9}` would let a template reach into objects or reshape a name, and
    a template that makes no http(s) URL would only fail once a browser had it."""
    allowed = TEMPLATE_FIELDS[name]
    try:
        parts = list(Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"not a valid template: {exc}") from None
    named = set()
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in allowed or spec or conversion:
            raise ValueError(f"may name only {{{'}, {'.join(allowed)}}}, plainly; got "
                             f"{{{field}{'!' + conversion if conversion else ''}"
                             f"{':' + spec if spec else ''}}}")
        named.add(field)
    if allowed[0] not in named:
        raise ValueError(f"must contain {{{allowed[0]}}}")
    example = template.format(**{field: "x1" for field in allowed})
    try:
        url = URL(example)
    except ValueError:
        raise ValueError(f"does not make a URL (e.g. {example!r})") from None
    if url.protocol not in ("http:", "https:"):
        raise ValueError(f"must make an http(s) URL, not {url.protocol!r}")
    return template


class PiecesSettings(BaseModel):
    model_config = _STRICT

    url_template: str = Field(
        "http://pieces.oven.internal/{piece}/",
        description="URL of a piece by name; the default serves oven's bundled pieces. May "
        "also name {density}.",
    )
    code_template: str | None = Field(
        None,
        description="URL of a KidLisp code written $code ({code} is the code without '$'; "
        "may also name {density}), e.g. \"https://aesthetic.computer/${code}?density={density}"
        "&nolabel\"; unset = codes are refused.",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) raw URLs may come from; empty = none.",
    )
    allow_private: bool = Field(
        False, description="Let allowed origins resolve to private/loopback addresses."
    )

    @field_validator("url_template", "code_template")
    @classmethod
    def _templates_name_their_fields(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else check_template(str(info.field_name), value)

    @field_validator("allowed_origins")
    @classmethod
    def _origins_are_origins(cls, values: list[str]) -> list[str]:
        # Read as the browser reads them (the same parser the allow-list check uses): an entry
        # that is no http(s) origin would otherwise match nothing, silently.
        for value in values:
            try:
                url = URL(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a URL; write scheme://host[:port]") from None
            origin = str(url.origin)
            if not origin.startswith(("http://", "https://")):
                raise ValueError(f"{value!r}: only http(s) origins can be allowed")
            if url.pathname not in ("", "/") or url.search or url.hash:
                raise ValueError(f"{value!r} has a path; an origin is scheme://host[:port] "
                                 f"(here {origin})")
        return values
    render_version: str = Field(
        "1", description="Part of every capture key: change it to invalidate cached results."
    )


class ClusterSettings(BaseModel):
    """Several instances sharing one store: identity and job leases (one instance uses them too)."""

    model_config = _STRICT

    role: Literal["all", "api", "worker"] = Field(
        "all",
        description="What this instance runs: all (HTTP and captures), api (HTTP, admission, "
        "cache and results; never claims a job, starts no Chromium or ffmpeg) or worker "
        "(claims and runs jobs from the shared store; serves only /health, /ready, /metrics "
        "and /status). `oven serve --role` overrides it.",
    )
    instance_id: str | None = Field(
        None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$",
        description="This instance's name in job records, /status and metrics; unset = "
        "hostname:port (stable across restarts, so a restarted instance resumes its own jobs).",
    )
    lease_s: float = Field(
        30.0, ge=1, le=3600,
        description="How long a claimed job stays with its instance without a heartbeat; "
        "another instance takes it over after that (plus clock skew between hosts).",
    )
    heartbeat_s: float = Field(
        10.0, gt=0, le=1200, description="How often running jobs' leases are renewed."
    )
    parked_takeover_s: float = Field(
        600.0, ge=0, le=7 * 86400,
        description="How long after its lease ran out a job parked in upload_pending by a "
        "vanished instance waits before another instance captures it again (its file is on "
        "the vanished host's disk).",
    )
    poll_s: float = Field(
        0.5, gt=0, le=60,
        description="How often the shared queue is polled for work admitted elsewhere and "
        "for jobs other instances finished (waiters on them are answered then).",
    )

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> ClusterSettings:
        if self.heartbeat_s * 2 > self.lease_s:
            raise ValueError(
                f"heartbeat_s ({self.heartbeat_s:g}) must be at most half of lease_s "
                f"({self.lease_s:g}), or leases expire between heartbeats")
        return self
