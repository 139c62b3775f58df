"""The `[bakes]` config section: tape baking (frame archives → MP4 + thumbnail)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class BakeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_fps: float = Field(30.0, gt=0, le=240, description="fps when neither a soundtrack "
                               "nor timing.json says otherwise.")
    max_fps: float = Field(120.0, gt=0, le=240, description="Highest fps a bake may come out "
                           "at (a soundtrack or timing.json asking for more is refused).")
    min_fps: float = Field(0.5, gt=0, le=240, description="Lowest fps a bake may come out at.")
    max_archive_bytes: int = Field(
        512 * 1024 * 1024, ge=1024, le=1 << 40,
        description="Largest upload or fetched archive; /bakes bypasses server.max_body_bytes.")
    max_total_bytes: int = Field(
        2 * 1024 * 1024 * 1024, ge=1024, le=1 << 42,
        description="Largest sum of the archive's members once unpacked (zip bomb guard).")
    max_ratio: float = Field(
        100.0, ge=1, le=100_000,
        description="Largest unpacked/packed size ratio of a member over ratio_floor_bytes, "
        "and of the whole archive (zip bomb guard; PNG frames barely compress).")
    ratio_floor_bytes: int = Field(
        1024 * 1024, ge=0, le=1 << 30,
        description="Members smaller than this unpacked are not ratio-checked (they cannot "
        "bomb; a short silent WAV compresses a thousandfold).")
    max_frames: int = Field(3000, ge=1, le=1_000_000, description="Frames one bake may hold.")
    max_frame_pixels: int = Field(
        3840 * 2160, ge=16, le=1 << 28, description="Largest width x height of a frame.")
    max_frame_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, le=1 << 32, description="Largest single member, unpacked.")
    max_scale: int = Field(8, ge=1, le=8, description="Largest nearest-neighbour upscale factor.")
    max_output_pixels: int = Field(
        3840 * 2160, ge=16, le=1 << 28,
        description="Largest width x height after upscaling (what libx264 is asked to encode).")
    max_duration_s: float = Field(600.0, gt=0, le=86400, description="Longest bake, in seconds.")
    max_active: int = Field(
        20, ge=1, le=10_000,
        description="Bakes queued or running at once; more are answered 429 with Retry-After.")
    encode_timeout_s: float = Field(
        300.0, gt=0, le=7200, description="Wall-clock limit of one bake's ffmpeg run.")
    fetch_timeout_s: float = Field(
        60.0, gt=0, le=3600, description="Limit on fetching an archive from a `url`.")
    upload_timeout_s: float = Field(
        600.0, gt=0, le=86400,
        description="Limit on receiving a whole POST /bakes body (it holds a bake slot).")
    upload_idle_s: float = Field(
        60.0, gt=0, le=3600,
        description="An upload that sends nothing for this long is cut off (408).")
    check_timeout_s: float = Field(
        120.0, gt=0, le=7200,
        description="Limit on unpacking and checking one archive, off the HTTP loop.")
    audio_bitrate: str = Field(
        "160k", pattern=r"^[1-9][0-9]{1,3}k$", description="AAC bitrate of the soundtrack.")
    mailbox: int = Field(200, ge=1, le=1_000_000, description="The Baker actor's mailbox size.")
    list_limit: int = Field(100, ge=1, le=10_000, description="Most bakes GET /bakes lists.")
