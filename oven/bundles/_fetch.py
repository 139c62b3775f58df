"""Fetching the files of one piece, from its own origin only, within the bundle's bounds.

The piece's origin is the one its URL template names (operator configuration, trusted the way
captures of a named piece trust it); nothing else is ever fetched. A redirect is followed by
hand, one hop at a time, so a hop to another origin (a private address, a metadata service) is
refused before any request goes there. Bodies are streamed and cut off at the file bound, so a
1 GB image costs at most `max_file_bytes` of memory. oven's bundled pieces are read from the
package directory, as the browser pool's route serves them, never over the network.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import httpx
from ada_url import URL

from oven.bundles._errors import BundleRefused, FetchFailed, FetchRefused, TooLarge
from oven.capture import PIECES_ORIGIN, pieces_dir
from oven.config import BundlesSettings
from oven.grabs import origin_of

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


@dataclass(frozen=True)
class Resource:
    url: str  # as referenced: the key other files name it by
    final_url: str  # after redirects: the base its own relative references resolve against
    media_type: str  # without parameters, lowercase
    body: bytes


class Fetcher:
    """One bundle's downloads. Counts files and bytes across the whole bundle."""

    def __init__(self, origin: str, settings: BundlesSettings) -> None:
        self.origin = origin
        self.settings = settings
        self.files = 0
        self.bytes = 0
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Fetcher:
        if self.origin != PIECES_ORIGIN:
            # trust_env off: a proxy from the environment would fetch what we did not check.
            self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False,
                                             timeout=self.settings.timeout_s)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()

    def same_origin(self, url: str) -> bool:
        return origin_of(url) == self.origin

    def _count_file(self, url: str) -> None:
        self.files += 1
        if self.files > self.settings.max_files:
            raise TooLarge(f"the piece loads more than {self.settings.max_files} files "
                           f"([compat.bundles] max_files); the last was {url[:200]}")

    def _count_bytes(self, url: str, size: int, so_far: int) -> None:
        if so_far > self.settings.max_file_bytes:
            raise TooLarge(f"{url[:200]} is over {self.settings.max_file_bytes} bytes "
                           "([compat.bundles] max_file_bytes)")
        if self.bytes + size > self.settings.max_total_bytes:
            raise TooLarge(f"the piece's files add up to more than "
                           f"{self.settings.max_total_bytes} bytes ([compat.bundles] "
                           "max_total_bytes)")
        self.bytes += size

    async def fetch(self, url: str) -> Resource:
        if not self.same_origin(url):
            raise FetchRefused(f"{url[:200]}: not on the piece's origin {self.origin}")
        self._count_file(url)
        if self.origin == PIECES_ORIGIN:
            return self._read_bundled(url)
        try:
            return await self._download(url)
        except httpx.TransportError as exc:
            raise BundleRefused(502, "origin_unreachable",
                                f"{url[:200]}: {type(exc).__name__}: {exc}"[:400]) from None

    def _read_bundled(self, url: str) -> Resource:
        root = pieces_dir()
        path = (root / unquote(URL(url).pathname).lstrip("/")).resolve()
        if not path.is_relative_to(root):
            raise FetchFailed(f"{url[:200]}: no such piece file")  # ../ never read
        if path.is_dir():
            path = path / "index.html"
        if not path.is_file():
            raise FetchFailed(f"{url[:200]}: no such piece file")
        size = path.stat().st_size
        self._count_bytes(url, size, size)
        return Resource(url=url, final_url=url, media_type=_guess(path), body=path.read_bytes())

    async def _download(self, url: str) -> Resource:
        assert self._client is not None
        current = url
        for _hop in range(self.settings.max_redirects + 1):
            # identity: a compressed body would be inflated past the bounds chunk by chunk.
            async with self._client.stream("GET", current,
                                           headers={"Accept-Encoding": "identity"}) as response:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    target = _join(response.headers["location"], current)
                    if target is None or not self.same_origin(target):
                        raise FetchRefused(
                            f"{url[:200]} redirects to {str(target)[:200]}, off the piece's "
                            f"origin {self.origin}: not followed")
                    current = target
                    continue
                if response.status_code != 200:
                    raise FetchFailed(f"{current[:200]}: HTTP {response.status_code}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit():
                    self._count_bytes(current, 0, int(declared))
                chunks: list[bytes] = []
                received = 0
                async for chunk in response.aiter_bytes():
                    received += len(chunk)
                    self._count_bytes(current, len(chunk), received)
                    chunks.append(chunk)
                media = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if not _MEDIA_TYPE.fullmatch(media):
                    # It is written into data: URLs: `text/html,<script>` would end the type.
                    media = ""
                return Resource(url=url, final_url=current,
                                media_type=media or _guess(Path(URL(current).pathname)),
                                body=b"".join(chunks))
        raise FetchRefused(f"{url[:200]}: more than {self.settings.max_redirects} redirects "
                           "([compat.bundles] max_redirects)")


def _join(reference: str, base: str) -> str | None:
    try:
        return str(URL(reference, base).href)
    except ValueError:
        return None


def _guess(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"
