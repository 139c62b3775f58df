"""Async ffmpeg encoding: frames in a job dir to PNG, JPEG, WebP, GIF or MP4.

Plain async code; the Encoder actor runs it on its loop thread and bounds concurrency.
"""

from ._bake import BakeEncodeRequest, bake_command, encode_bake
from ._encode import encode
from ._errors import EncodeError, EncodeTimeout
from ._format import Format, FormatSpec, animated_formats, required_encoders
from ._frames import FrameFormat, frame_format_for
from ._request import MAX_UPSCALE, EncodeRequest, EncodeResult
from ._run import check_ffmpeg, ffmpeg_version, running_pids
from ._settings import EncoderSettings

__all__ = [
    "MAX_UPSCALE",
    "BakeEncodeRequest",
    "EncodeError",
    "EncodeRequest",
    "EncodeResult",
    "EncodeTimeout",
    "EncoderSettings",
    "Format",
    "FormatSpec",
    "FrameFormat",
    "animated_formats",
    "bake_command",
    "check_ffmpeg",
    "encode",
    "encode_bake",
    "ffmpeg_version",
    "frame_format_for",
    "required_encoders",
    "running_pids",
]
