"""Reading a bake request body: the archive streams to a file, never whole into memory.

Choice (documented in the README): python-multipart's push parser, fed the request stream chunk
by chunk, with our own callbacks. Starlette's `request.form()` would spool the file to a temp
file of its own choosing (then we would copy it) and its limits are per part, not ours. Here the
archive part's bytes go straight into the bake's own dir and the byte count is checked against
`bakes.max_archive_bytes` as they arrive; text fields are capped at a few KiB.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from python_multipart.multipart import MultipartParser, parse_options_header

from oven.bakes._errors import BakeRefused

ARCHIVE_FIELDS = ("archive", "file")
ARCHIVE_TYPES = ("application/zip", "application/x-zip-compressed", "application/x-tar",
                 "application/gzip", "application/x-gzip", "application/octet-stream")
MAX_FIELD_BYTES = 8192
MAX_FIELDS = 16
MAX_JSON_BYTES = 65536


@dataclass
class Intake:
    """What the body held: the archive on disk (or None) and the small text fields."""

    archive: Path | None = None
    archive_bytes: int = 0
    fields: dict[str, Any] = field(default_factory=dict)


async def read_body(chunks: AsyncIterator[bytes], content_type: str, archive_path: Path, *,
                    max_archive_bytes: int) -> Intake:
    """Multipart (an `archive` file part + fields), a raw archive body, or JSON with `url`."""
    media, params = parse_options_header(content_type)
    kind = media.decode("latin-1").lower()
    if kind == "multipart/form-data":
        boundary = params.get(b"boundary")
        if not boundary:
            raise BakeRefused("Content-Type: multipart/form-data without a boundary",
                              code="bad_request", status=400)
        return await _read_multipart(chunks, boundary, archive_path, max_archive_bytes)
    if kind == "application/json":
        return Intake(fields=await _read_json(chunks))
    if kind in ARCHIVE_TYPES:
        intake = Intake(archive=archive_path)
        with archive_path.open("xb") as out:
            async for chunk in chunks:
                intake.archive_bytes += len(chunk)
                _check_archive_size(intake.archive_bytes, max_archive_bytes)
                out.write(chunk)
        return intake
    raise BakeRefused(
        f"Content-Type {kind or '(none)'!r}: send multipart/form-data with an 'archive' file "
        "part, a raw application/zip or application/x-tar body, or JSON with a 'url'",
        code="unsupported_media", status=415)


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
        _, options = parse_options_header(self._headers.get("content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        is_file = b"filename" in options
        if is_file:
            if self._name not in ARCHIVE_FIELDS:
                raise BakeRefused(f"form: file part {self._name!r}; send the archive as the "
                                  "'archive' field", code="invalid")
            if self.intake.archive is not None:
                raise BakeRefused("form: more than one archive part", code="invalid")
            self.intake.archive = self.archive_path
            # Plain blocking writes from the event loop: chunks are ≤64 KiB into the page cache,
            # cheaper than a thread hop per chunk.
            self._file = self.archive_path.open("xb")
            return
        if len(self.intake.fields) >= MAX_FIELDS:
            raise BakeRefused(f"form: more than {MAX_FIELDS} fields", code="invalid")
        self._text = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self.intake.archive_bytes += end - start
            _check_archive_size(self.intake.archive_bytes, self.max_archive_bytes)
            self._file.write(data[start:end])
        elif self._text is not None:
            self._text += data[start:end]
            if len(self._text) > MAX_FIELD_BYTES:
                raise BakeRefused(f"form: field {self._name!r} over {MAX_FIELD_BYTES} bytes",
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
