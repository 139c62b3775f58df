"""The [pty] section of the config: what may run in a terminal and how its flow is bounded."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

KIB = 1024
MIB = 1024 * KIB


class PtyProfile(BaseModel):
    """A command clients may start by name; clients never send commands themselves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: list[str] = Field(
        ..., min_length=1, description="argv of the child; argv[0] is looked up on PATH."
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Added to the child's small base environment."
    )
    cwd: Path | None = Field(None, description="Working directory of the child (default: ours).")
    raw: bool = Field(
        False, description="Put the tty in raw mode before exec (no echo, no line editing)."
    )


def _default_profiles() -> dict[str, PtyProfile]:
    return {"shell": PtyProfile(command=["bash", "-l"])}


class PtySettings(BaseModel):
    """Terminal sessions: off unless enabled with a token; every buffer has a cap."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(False, description="Serve /pty routes (also needs `token`).")
    token: SecretStr | None = Field(None, description="Bearer token every PTY request must carry.")
    max_sessions: int = Field(8, ge=1, le=256, description="Sessions open at once.")
    input_buffer_bytes: int = Field(
        1 * MIB,
        ge=4 * KIB,
        le=64 * MIB,
        description="Client input held per session before the client is made to wait.",
    )
    max_frame_bytes: int = Field(
        64 * KIB, ge=1, le=16 * MIB, description="Largest input frame and output chunk."
    )
    ring_bytes: int = Field(
        8 * MIB, ge=64 * KIB, le=1024 * MIB, description="Output kept per session for replay."
    )
    pause_high_bytes: int = Field(
        1 * MIB,
        ge=4 * KIB,
        le=512 * MIB,
        description="Stop reading the child when the controller has this much unacked output.",
    )
    resume_low_bytes: int = Field(
        256 * KIB,
        ge=0,
        le=512 * MIB,
        description="Read the child again once the controller's unacked output is below this.",
    )
    observer_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="An observer behind and making no progress is dropped."
    )
    send_timeout_s: float = Field(
        10.0, gt=0, le=600, description="Limit of one WebSocket/SSE send to a client."
    )
    close_timeout_s: float = Field(
        3.0, gt=0, le=600, description="Grace after SIGHUP/SIGTERM before SIGKILL on close."
    )
    record_dir: Path | None = Field(
        None, description="When set, an asciinema v2 .cast file is written per session."
    )
    profiles: dict[str, PtyProfile] = Field(
        default_factory=_default_profiles, description="Commands clients may start, by name."
    )

    @model_validator(mode="after")
    def _watermarks_fit(self) -> PtySettings:
        # The controller must pause before it could fall off the ring, or it would lose output.
        if not self.resume_low_bytes < self.pause_high_bytes < self.ring_bytes:
            raise ValueError(
                "need resume_low_bytes < pause_high_bytes < ring_bytes, got "
                f"{self.resume_low_bytes} / {self.pause_high_bytes} / {self.ring_bytes}"
            )
        if self.max_frame_bytes > self.input_buffer_bytes:
            raise ValueError(
                f"max_frame_bytes ({self.max_frame_bytes}) must fit in "
                f"input_buffer_bytes ({self.input_buffer_bytes})"
            )
        return self
