"""Pure functions that turn an EncodeRequest and the settings into an ffmpeg argv."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

from ._format import Format
from ._request import EncodeRequest, frame_index
from ._settings import EncoderSettings, jpeg_qscale

# -xerror: without it a corrupt frame is skipped with a message and ffmpeg exits 0, so the
# output silently loses frames. -nostdin: ffmpeg otherwise reads the terminal for keys.
_GLOBAL = ["-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-xerror", "-y"]


def build_command(request: EncodeRequest, settings: EncoderSettings, out_path: Path) -> list[str]:
    """The full argv: ffmpeg, global options, frame input, format options, output file."""
    return [
        settings.ffmpeg_path,
        *_GLOBAL,
        *input_args(request),
        *output_args(request, settings),
        str(out_path.absolute()),
    ]


def input_args(request: EncodeRequest) -> list[str]:
    """Read the frames from the job dir with the image2 demuxer: no bytes pass through Python."""
    first = request.frames[0].absolute()
    # The dir is taken literally; only the file name part is an image2 pattern.
    pattern = str(first.parent).replace("%", "%%") + f"/frame-%05d{first.suffix}"
    return [
        "-f", "image2",
        "-pattern_type", "sequence",
        "-framerate", fps_arg(request.fps),
        "-start_number", str(frame_index(first)),
        "-i", pattern,
    ]  # fmt: skip


def output_args(request: EncodeRequest, settings: EncoderSettings) -> list[str]:
    fmt = request.format
    if fmt is Format.PNG:
        return [
            *_filter_args(upscale_filters(request.upscale)),
            "-frames:v", "1",
            "-c:v", "png",
            "-compression_level", str(settings.png_compression),
            "-f", "image2", "-update", "1",
        ]  # fmt: skip
    if fmt is Format.JPEG:
        return [
            *_filter_args(upscale_filters(request.upscale)),
            "-frames:v", "1",
            "-c:v", "mjpeg",
            "-q:v", str(jpeg_qscale(request.quality or settings.jpeg_quality)),
            # 4:2:0 like browsers' own JPEG output: smaller files, decoded everywhere.
            "-pix_fmt", "yuvj420p",
            "-f", "image2", "-update", "1",
        ]  # fmt: skip
    if fmt is Format.WEBP:
        return [
            *_filter_args(upscale_filters(request.upscale)),
            "-frames:v", str(len(request.frames)),
            *_webp_codec_args(request, settings),
            "-f", "webp",
        ]  # fmt: skip
    if fmt is Format.GIF:
        return [
            "-filter_complex", gif_graph(request.upscale, settings),
            "-frames:v", str(len(request.frames)),
            "-loop", "0",
            "-final_delay", str(gif_final_delay(len(request.frames), request.fps)),
            "-f", "gif",
        ]  # fmt: skip
    if fmt is Format.MP4:
        return [
            # yuv420p needs even width and height: pad one black row/column rather than
            # resample every pixel.
            *_filter_args([*upscale_filters(request.upscale), "pad=ceil(iw/2)*2:ceil(ih/2)*2"]),
            "-frames:v", str(len(request.frames)),
            "-c:v", "libx264",
            "-preset", settings.mp4_preset,
            "-crf", str(settings.mp4_crf if request.quality is None
                        else mp4_crf(request.quality)),
            "-pix_fmt", "yuv420p",
            # moov before mdat so browsers can start playing before the whole file arrives.
            "-movflags", "+faststart",
            "-f", "mp4",
        ]  # fmt: skip
    raise AssertionError(f"unhandled format {fmt}")


def _webp_codec_args(request: EncodeRequest, settings: EncoderSettings) -> list[str]:
    # libwebp for a still; libwebp_anim builds one animated file with proper frame deltas.
    animated = not request.still
    return [
        "-c:v", "libwebp_anim" if animated else "libwebp",
        "-quality", str(settings.webp_quality if request.quality is None else request.quality),
        # A quality asked for is a lossy encode's, whatever the setting says.
        "-lossless", "1" if settings.webp_lossless and request.quality is None else "0",
        "-compression_level", str(settings.webp_compression_level),
        *(["-loop", "0"] if animated else []),
    ]  # fmt: skip


def mp4_crf(quality: int) -> int:
    """Quality 1..100 as libx264's CRF 51..10 (quality 69 is the default CRF 23)."""
    return round(51 - (quality - 1) * 41 / 99)


def gif_graph(upscale: int, settings: EncoderSettings) -> str:
    """One graph, two uses of the frames: build the palette from all of them, then map them.

    Scaled frames are mapped (and dithered) at their own size, then repeated by nearest
    neighbour: a dither pattern made after the upscale would scatter inside each art pixel.
    The repeated pixels are all palette colours already, so the second mapping, undithered,
    only turns them back into palette indexes for the GIF encoder.
    """
    palette = f"palettegen=max_colors={settings.gif_max_colors}"
    mapped = f"paletteuse=dither={settings.gif_dither}"
    if upscale == 1:
        return f"[0:v]split[a][b];[a]{palette}[p];[b][p]{mapped}"
    return (
        f"[0:v]split[a][b];[a]{palette},split[p][q];[b][p]{mapped},"
        f"{','.join(upscale_filters(upscale))}[u];[u][q]paletteuse=dither=none"
    )


def gif_final_delay(frames: int, fps: float) -> int:
    """The last frame's delay in centiseconds, so the GIF lasts frames / fps to the nearest
    centisecond: ffmpeg's muxer times each frame from its timestamp, rounded half up, but
    gives the last the delay of the one before (12 frames at 15 fps lasted 0.79 s)."""
    rate = Fraction(fps_arg(fps))

    def start_cs(frame: int) -> int:
        return math.floor(frame * 100 / rate + Fraction(1, 2))

    return start_cs(frames) - start_cs(frames - 1)


def upscale_filters(factor: int) -> list[str]:
    if factor == 1:
        return []
    return [f"scale=iw*{factor}:ih*{factor}:flags=neighbor"]


def fps_arg(fps: float) -> str:
    """fps as an exact rational for ffmpeg: 16.0 -> 16, 12.5 -> 25/2."""
    return str(Fraction(fps).limit_denominator(1001))


def _filter_args(filters: list[str]) -> list[str]:
    return ["-vf", ",".join(filters)] if filters else []
