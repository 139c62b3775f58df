"""Making one bundle: every file the piece loads, fetched, then written into one HTML page.

How ES modules go offline (measured on Chromium 156, network aborted): a module cannot be
inlined as text where it is imported, and a module at a data: URL cannot resolve `./dep.js`
(a data: URL is no base for relative URLs). So every specifier is rewritten to the absolute URL
it names on the piece's origin, and one import map, the first thing in <head>, maps each such
URL to a data: URL of that module. A module keeps one identity (its URL is the map's key), so
import cycles and shared dependencies behave as they do live. Classic scripts and style
sheets are inlined as text, images and fonts become data: URLs.

Two passes over the same files: `collect` fetches (I/O, on the event loop; parsing each file
for its references on a worker thread), `assemble` rewrites and minifies (CPU, on a worker
thread). The content hash is taken between them, so a cached bundle costs only the fetch.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from oven.bundles import _css, _js
from oven.bundles._errors import BundleRefused, FetchFailed, TooLarge
from oven.bundles._fetch import Fetcher, Resource
from oven.bundles._minify import MinifyFailed, minified
from oven.bundles._page import ImportMap, Kind, Visitor, css_visit, join, walk

# Part of every content hash: change it when the same sources would make a different bundle.
BUNDLE_FORMAT = "1"
FETCHES_AT_ONCE = 6
_SCRIPT_END = re.compile(r"</(script)", re.IGNORECASE)
Progress = Callable[[str, dict[str, object]], None]


@dataclass
class Sources:
    """Everything one piece loads, by the URL it is named by."""

    page: Resource
    files: dict[str, Resource] = field(default_factory=dict)
    kinds: dict[str, Kind] = field(default_factory=dict)
    imports: ImportMap = field(default_factory=ImportMap)
    warnings: list[str] = field(default_factory=list)

    def content_hash(self, minify: bool) -> str:
        digest = hashlib.sha256(f"oven-bundle {BUNDLE_FORMAT} minify={minify}\n".encode())
        for url, res in sorted({self.page.url: self.page, **self.files}.items()):
            body = hashlib.sha256(res.body).hexdigest()
            digest.update(f"{url}\n{res.final_url}\n{res.media_type}\n{body}\n".encode())
        return digest.hexdigest()

    @property
    def bytes(self) -> int:
        return len(self.page.body) + sum(len(r.body) for r in self.files.values())


class _Refs(Visitor):
    """The collecting walk: notes what the page names, changes nothing."""

    def __init__(self) -> None:
        self.found: list[tuple[str, Kind]] = []

    def reference(self, url: str, kind: Kind) -> str | None:
        self.found.append((url, kind))
        return None

    def script(self, url: str, module: bool) -> str | None:
        self.found.append((url, "module" if module else "script"))
        return None

    def inline_script(self, text: str, base: str, module: bool) -> str | None:
        self.found.extend((f"{base}\0{spec}", "module")
                          for spec in _js.specifiers(text, f"an inline script of {base}"))
        return None

    def sheet(self, url: str) -> str | None:
        self.found.append((url, "style"))
        return None

    def inline_sheet(self, text: str, base: str) -> str | None:
        css_visit(text, base, self._css)
        return None

    def declarations(self, text: str, base: str) -> str | None:
        _css.rewrite_declarations(text, lambda u, _k: self._css(join(u, base) or u, "url"))
        return None

    def _css(self, url: str, kind: _css.Kind) -> None:
        self.found.append((url, "style" if kind == "import" else "asset"))


def _page_refs(page: Resource) -> tuple[list[tuple[str, Kind]], ImportMap]:
    refs = _Refs()
    _html, imports = walk(_text(page), page.final_url, refs)
    return refs.found, imports


def _file_refs(res: Resource, kind: Kind) -> list[tuple[str, Kind]]:
    if kind == "style":
        refs = _Refs()
        css_visit(_text(res), res.final_url, refs._css)
        return refs.found
    if kind in ("module", "script"):
        # A classic script's literal import() loads a module too.
        return [(f"{res.final_url}\0{spec}", "module")
                for spec in _js.specifiers(_text(res), res.url)]
    return []


def _level_refs(fetched: list[tuple[str, Resource]],
                kinds: dict[str, Kind]) -> list[tuple[str, Kind]]:
    return [ref for url, res in fetched for ref in _file_refs(res, kinds[url])]


async def collect(page_url: str, fetcher: Fetcher, *, max_depth: int,
                  progress: Progress) -> Sources:
    """Fetch the page and, breadth first, everything it loads (each file once: cycles end)."""
    page = await fetcher.fetch(page_url)
    if "html" not in page.media_type:
        raise FetchFailed(f"{page_url}: the piece's page is {page.media_type}, not HTML")
    refs, imports = await asyncio.to_thread(_page_refs, page)
    sources = Sources(page=page, imports=imports)
    level = refs
    depth = 1
    while level:
        if depth > max_depth:
            raise TooLarge(f"the piece's references go deeper than {max_depth} files "
                           "([compat.bundles] max_depth)")
        wanted: dict[str, Kind] = {}
        for raw, kind in level:
            url = _resolve(raw, imports, sources)
            if url is None or url in sources.files or url == page.url or url in wanted:
                continue
            if url.startswith(("data:", "blob:")):
                continue
            if not fetcher.same_origin(url):
                sources.warnings.append(f"left as it is (another origin, not fetched): "
                                        f"{url[:200]}")
                continue
            wanted[url] = kind
        following: list[tuple[str, Kind]] = []
        # A level's files at once, a few at a time: one at a time costs a round trip each.
        fetched = await _fetch_all(fetcher, list(wanted), sources.warnings)
        for url, res in fetched:
            sources.files[url] = res
            sources.kinds[url] = wanted[url]
            progress("fetching", {"files": fetcher.files, "bytes": fetcher.bytes,
                                  "url": url[:200]})
        if fetched:
            following.extend(await asyncio.to_thread(_level_refs, fetched, wanted))
        level = following
        depth += 1
    return sources


async def _fetch_all(fetcher: Fetcher, urls: list[str],
                     warnings: list[str]) -> list[tuple[str, Resource]]:
    gate = asyncio.Semaphore(FETCHES_AT_ONCE)
    done: list[tuple[str, Resource]] = []

    async def one(url: str) -> None:
        async with gate:
            try:
                done.append((url, await fetcher.fetch(url)))
            except FetchFailed as exc:
                # As live: a missing file fails where the piece loads it, not the whole page.
                warnings.append(exc.message)

    try:
        async with asyncio.TaskGroup() as group:  # the first refusal cancels the rest
            for url in urls:
                group.create_task(one(url))
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return sorted(done, key=lambda pair: pair[0])


def _resolve(raw: str, imports: ImportMap, sources: Sources) -> str | None:
    if "\0" not in raw:
        return raw
    base, spec = raw.split("\0", 1)
    url = imports.resolve(spec, base)
    if url is None and spec:
        sources.warnings.append(f"left as it is (a bare module name the page's import map "
                                f"does not map): {spec[:200]}")
    return url


@dataclass(frozen=True)
class Assembled:
    html: bytes
    warnings: list[str]


class _Inliner(Visitor):
    """The bundling walk: each name the page loads replaced by the file itself."""

    inlining = True

    def __init__(self, sources: Sources, minify: bool, max_minify_bytes: int,
                 max_bundle_bytes: int, deadline: float) -> None:
        self.sources = sources
        self.minify = minify
        self.max_minify_bytes = max_minify_bytes
        self.max_bundle_bytes = max_bundle_bytes
        self.deadline = deadline
        self.spent = 0
        self.warnings: list[str] = []
        self._data: dict[str, str] = {}
        self._sheets: dict[str, str] = {}
        self._open_sheets: set[str] = set()

    # -- what the walk asks ------------------------------------------------------------------

    def reference(self, url: str, kind: Kind) -> str | None:
        res = self.sources.files.get(url)
        if res is None:
            return None
        if kind == "script":
            return self._spend(
                _data_url("text/javascript", self._script(res, module=False).encode()))
        return self._spend(self._data_url(res))

    def script(self, url: str, module: bool) -> str | None:
        res = self.sources.files.get(url)
        if res is None:
            return None
        if module:
            # Through the import map: the module keeps the identity its other importers see.
            return "import " + _js_string(url) + ";"
        return self._spend(_close_safe(self._script(res, module=False)))

    def inline_script(self, text: str, base: str, module: bool) -> str | None:
        return self._spend(
            _close_safe(self._js(self._specifiers(text, base), f"an inline script of {base}")))

    def sheet(self, url: str) -> str | None:
        res = self.sources.files.get(url)
        return None if res is None else self._sheet(res)

    def _spend(self, text: str) -> str:
        """Count what goes into the bundle before it goes in: one 8 MB image named by a
        thousand <img> tags would be 8 GB of HTML, held in memory while it is written."""
        self.spent += len(text)
        if self.spent > self.max_bundle_bytes:
            raise TooLarge(f"the bundle would pass {self.max_bundle_bytes} bytes "
                           "([compat.bundles] max_bundle_bytes): the piece names the same "
                           "large files many times")
        return text

    def inline_sheet(self, text: str, base: str) -> str | None:
        return self._css(self._flattened(text, base), f"a <style> of {base}")

    def declarations(self, text: str, base: str) -> str | None:
        return _css.rewrite_declarations(
            text, lambda u, _k: self._css_url(join(u, base) or u, "url"))

    # -- files -------------------------------------------------------------------------------

    def import_map(self) -> str:
        modules = {url: _data_url("text/javascript", self._script(res, module=True).encode())
                   for url, res in self.sources.files.items()
                   if self.sources.kinds.get(url) == "module"}
        return self._spend(
            json.dumps({"imports": modules}, separators=(",", ":")).replace("</", "<\\/"))

    def _data_url(self, res: Resource) -> str:
        if res.url not in self._data:
            self._data[res.url] = _data_url(res.media_type or "application/octet-stream",
                                            res.body)
        return self._data[res.url]

    def _script(self, res: Resource, *, module: bool) -> str:
        return self._js(self._specifiers(_text(res), res.final_url), res.url)

    def _specifiers(self, text: str, base: str) -> str:
        def replace(spec: str) -> str | None:
            url = self.sources.imports.resolve(spec, base)
            return url if url is not None and url in self.sources.files else None
        return _js.rewrite_specifiers(text, replace, base)

    def _sheet(self, res: Resource) -> str:
        if res.url in self._open_sheets:  # an @import cycle: the browser stops it too
            self.warnings.append(f"an @import cycle through {res.url[:200]} was cut")
            return ""
        if res.url in self._sheets:  # named again: its whole text goes in again
            return self._spend(self._sheets[res.url])
        self._open_sheets.add(res.url)
        try:
            text = self._flattened(_text(res), res.final_url)
        finally:
            self._open_sheets.discard(res.url)
        # Counted by its URLs as they were written, and by its own text.
        self._sheets[res.url] = self._css(text, res.url)
        self._spend(_text(res))
        return self._sheets[res.url]

    def _flattened(self, text: str, base: str) -> str:
        """A sheet with its @imports replaced by the sheets themselves, in their place. Not
        `@import "data:..."`: Chromium's preload scanner reads an @import of over ~1 MB as
        a relative URL and requests it (measured), which offline is a stray request."""
        imports, rest = _css.split_imports(text)
        kept: list[str] = []
        inlined: list[str] = []
        for url, condition, plain in imports:
            absolute = join(url, base)
            res = self.sources.files.get(absolute) if absolute is not None else None
            if res is None or not plain:
                data = self._css_url(absolute, "import") if absolute is not None else None
                kept.append(f"@import url({json.dumps(data or url)}) {condition};")
                continue
            inner = self._sheet(res)
            inlined.append(f"@media {condition}{{{inner}}}" if condition else inner)
        return "".join(kept + inlined) + css_visit(rest, base, self._css_url)

    def _css_url(self, url: str, kind: _css.Kind) -> str | None:
        res = self.sources.files.get(url)
        if res is None:
            return None
        if kind == "import":
            return _data_url("text/css", self._sheet(res).encode())
        return self._spend(self._data_url(res))

    def _js(self, text: str, where: str) -> str:
        return self._minified("js", text, where)

    def _css(self, text: str, where: str) -> str:
        return self._minified("css", text, where)

    def _minified(self, kind: str, text: str, where: str) -> str:
        if not self.minify:
            return text
        if time.monotonic() > self.deadline:
            raise TimeoutError  # the caller answers it as the bundle's time bound
        if kind == "js" and len(text) > self.max_minify_bytes:
            # The JS minifier's time grows with the square of a scope's declarations
            # (measured: 16k `var`s 4 s, 64k 60 s on a busy host; CSS is linear: 2.8 MB in
            # 0.3 s), and a call cannot be stopped: past this size a script stays as it is.
            self.warnings.append(f"not minified (over {self.max_minify_bytes} bytes, "
                                 f"[compat.bundles] max_minify_bytes): {where[:200]}")
            return text
        try:
            return minified(kind, text)
        except MinifyFailed as exc:
            self.warnings.append(f"not minified ({kind} the minifier cannot read, kept as "
                                 f"it is): {where[:200]}: {str(exc).splitlines()[0][:200]}")
            return text


def assemble(sources: Sources, *, minify: bool, max_minify_bytes: int, max_bundle_bytes: int,
             deadline: float) -> Assembled:
    """The bundle's HTML (CPU work: run it on a worker thread). Raises TimeoutError once
    `deadline` (time.monotonic) has passed, checked before each file is minified."""
    inliner = _Inliner(sources, minify, max_minify_bytes, max_bundle_bytes, deadline)
    html, _imports = walk(_text(sources.page), sources.page.final_url, inliner,
                          head_script=inliner.import_map())
    return Assembled(html=html.encode("utf-8"), warnings=inliner.warnings)


async def build_sources(page_url: str, fetcher: Fetcher, *, max_depth: int,
                        progress: Progress) -> Sources:
    try:
        return await collect(page_url, fetcher, max_depth=max_depth, progress=progress)
    except BundleRefused:
        raise
    except (OSError, ValueError) as exc:
        raise FetchFailed(f"{page_url}: {type(exc).__name__}: {exc}"[:400]) from None


def _text(res: Resource) -> str:
    return res.body.decode("utf-8", "replace")


def _data_url(media_type: str, body: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(body).decode('ascii')}"


def _js_string(value: str) -> str:
    return json.dumps(value).replace("</", "<\\/")


def _close_safe(text: str) -> str:
    # An inline script ends at the first `</script` (any case), wherever it stands in the
    # JavaScript; `<\/` means the same inside strings, templates, regexes and comments.
    return _SCRIPT_END.sub(r"<\\/\1", text)

