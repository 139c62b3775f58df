"""Reading a bake request body: the archive streams to a file, never whole into memory.

Choice (documented in the README): python-multipart's push parser, fed the request stream chunk
by chunk, with our own callbacks. Starlette's `request.form()` would spool the file to a temp
file of its own choosing (then we would copy it) and its limits are per part, not ours. Here the
archive part's bytes go straight into the bake's own dir and the byte count is checked against
`bakes.max_archive_bytes` as they arrive; text fields are capped at a few KiB.

A body holds one of the `bakes.max_active` slots while it arrives, so every way of making it
last is bounded: the whole body by `bakes.upload_timeout_s` and its bytes, a silence by
`bakes.upload_idle_s`, the form by a handful of parts (repeated and nameless ones included).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from python_multipart.multipart import MultipartParser, parse_options_header

from oven.bakes._errors import BakeRefused
from oven.bakes._settings import BakeSettings

ARCHIVE_FIELDS = ("archive", "file")
ARCHIVE_TYPES = ("application/zip", "application/x-zip-compressed", "application/x-tar",
                 "application/gzip", "application/x-gzip", "application/octet-stream")
MAX_FIELD_BYTES = 8192
# Every part counts, the archive, repeated names and nameless ones included: a form that
# never ends in parts of a few bytes would otherwise hold its bake slot for as long as it likes.
MAX_PARTS = 16
MAX_JSON_BYTES = 65536
# Multipart framing and text fields on top of the archive itself.
BODY_SLACK = 256 * 1024


@dataclass
class Intake:
    """What the body held: the archive on disk (or None) and the small text fields."""

    archive: Path | None = None
    archive_bytes: int = 0
    fields: dict[str, Any] = field(default_factory=dict)


async def read_body(chunks: AsyncIterator[bytes], content_type: str, archive_path: Path, *,
                    settings: BakeSettings) -> Intake:
    """Multipart (an `archive` file part + fields), a raw archive body, or JSON with `url`."""
    media, params = parse_options_header(content_type)
    kind = media.decode("latin-1").lower()
    max_archive_bytes = settings.max_archive_bytes
    async with contextlib.aclosing(_timed(chunks, settings)) as body:
        if kind == "multipart/form-data":
            boundary = params.get(b"boundary")
            if not boundary:
                raise BakeRefused("Content-Type: multipart/form-data without a boundary",
                                  code="bad_request", status=400)
            return await _read_multipart(body, boundary, archive_path, max_archive_bytes)
        if kind == "application/json":
            return Intake(fields=await _read_json(body))
        if kind in ARCHIVE_TYPES:
            intake = Intake(archive=archive_path)
            with archive_path.open("xb") as out:
                async for chunk in body:
                    intake.archive_bytes += len(chunk)
                    _check_archive_size(intake.archive_bytes, max_archive_bytes)
                    out.write(chunk)
            return intake
    raise BakeRefused(
        f"Content-Type {kind or '(none)'!r}: send multipart/form-data with an 'archive' file "
        "part, a raw application/zip or application/x-tar body, or JSON with a 'url'",
        code="unsupported_media", status=415)


async def _timed(chunks: AsyncIterator[bytes], settings: BakeSettings
                 ) -> AsyncGenerator[bytes, None]:
    """The body's chunks, cut off at its deadline, after a silence, or past its byte bound."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.upload_timeout_s
    limit = settings.max_archive_bytes + BODY_SLACK
    seen = 0
    source = aiter(chunks)
    while True:
        left = deadline - loop.time()
        try:
            async with asyncio.timeout(min(left, settings.upload_idle_s)):
                chunk = await anext(source)
        except StopAsyncIteration:
            return
        except TimeoutError:
            if left <= settings.upload_idle_s:
                message = (f"body: not received within bakes.upload_timeout_s "
                           f"({settings.upload_timeout_s:g} s)")
            else:
                message = (f"body: nothing received for bakes.upload_idle_s "
                           f"({settings.upload_idle_s:g} s)")
            raise BakeRefused(message, code="upload_timeout", status=408) from None
        seen += len(chunk)
        if seen > limit:
            raise BakeRefused(f"body: over {limit} bytes (bakes.max_archive_bytes plus "
                              f"{BODY_SLACK} for the form around it)", code="too_large",
                              status=413)
        yield chunk


def _check_archive_size(seen: int, limit: int) -> None:
    if seen > limit:
        raise BakeRefused(f"archive: over bakes.max_archive_bytes ({limit} bytes)",
                          code="too_large", status=413)


async def _read_json(chunks: AsyncIterator[bytes]) -> dict[str, Any]:
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise BakeRefused(f"body: JSON over {MAX_JSON_BYTES} bytes", code="too_large",
                              status=413)
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BakeRefused(f"body is not valid JSON: {exc}", code="bad_request",
                          status=400) from None
    except RecursionError:
        raise BakeRefused("body is not valid JSON: nested too deeply", code="bad_request",
                          status=400) from None
    if not isinstance(data, dict):
        raise BakeRefused("body: expected a JSON object", code="invalid")
    return data


class _FormReader:
    """python-multipart callbacks: one archive part to disk, small fields to memory."""

    def __init__(self, archive_path: Path, max_archive_bytes: int) -> None:
        self.intake = Intake()
        self.archive_path = archive_path
        self.max_archive_bytes = max_archive_bytes
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._name = ""
        self._file: IO[bytes] | None = None
        self._text: bytearray | None = None
        self._parts = 0

    def on_part_begin(self) -> None:
        self._headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_field.decode("latin-1").lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise BakeRefused(f"form: more than {MAX_PARTS} parts", code="too_many_parts",
                              status=413)
        _, options = parse_options_header(self._headers.get("content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        if not self._name:
            raise BakeRefused("form: a part without a name", code="invalid")
        is_file = b"filename" in options
        if is_file:
            if self._name not in ARCHIVE_FIELDS:
                raise BakeRefused(f"form: file part {self._name[:64]!r}; send the archive as the "
                                  "'archive' field", code="invalid")
            if self.intake.archive is not None:
                raise BakeRefused("form: more than one archive part", code="invalid")
            self.intake.archive = self.archive_path
            # Plain blocking writes from the event loop: chunks are ≤64 KiB into the page cache,
            # cheaper than a thread hop per chunk.
            self._file = self.archive_path.open("xb")
            return
        if self._name in self.intake.fields:
            raise BakeRefused(f"form: field {self._name[:64]!r} sent twice", code="invalid")
        self._text = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self.intake.archive_bytes += end - start
            _check_archive_size(self.intake.archive_bytes, self.max_archive_bytes)
            self._file.write(data[start:end])
        elif self._text is not None:
            self._text += data[start:end]
            if len(self._text) > MAX_FIELD_BYTES:
                raise BakeRefused(f"form: field {self._name[:64]!r} over {MAX_FIELD_BYTES} bytes",
                                  code="too_large", status=413)

    def on_part_end(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        elif self._text is not None:
            self.intake.fields[self._name] = self._text.decode("utf-8", "replace")
            self._text = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


async def _read_multipart(chunks: AsyncIterator[bytes], boundary: bytes, archive_path: Path,
                          max_archive_bytes: int) -> Intake:
    reader = _FormReader(archive_path, max_archive_bytes)
    callbacks: Any = {name: getattr(reader, name) for name in (
        "on_part_begin", "on_part_data", "on_part_end", "on_header_field", "on_header_value",
        "on_header_end", "on_headers_finished")}
    parser = MultipartParser(boundary, callbacks)
    try:
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    except BakeRefused:
        raise
    except Exception as exc:  # python-multipart raises its own errors for malformed bodies
        raise BakeRefused(f"form: malformed multipart body ({exc})", code="bad_request",
                          status=400) from None
    finally:
        reader.close()
    return reader.intake
