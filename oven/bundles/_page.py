"""What a piece's HTML page loads, and the page rewritten to carry it inline.

One walk over the parsed page (Lexbor, through selectolax: an HTML5 parser, so the tree is the
browser's tree) serves both: `Visitor.reference` is told each URL the page names and what kind
of file it is; the inliner answers with what to put in its place. Scripts of an unknown `type`
(shader sources, templates) are data, not code, and are left alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Literal

from ada_url import URL
from selectolax.lexbor import LexborHTMLParser, LexborNode

from oven.bundles import _css

Kind = Literal["script", "module", "style", "asset"]
_CLASSIC = frozenset({"", "text/javascript", "application/javascript", "module"})
_MEDIA = (("img", "src"), ("source", "src"), ("video", "src"), ("video", "poster"),
          ("audio", "src"), ("track", "src"), ("input", "src"), ("embed", "src"))
_SRCSET = re.compile(r"\s*([^\s,]+)(\s+[^,]*)?(?:,|$)")


def join(reference: str, base: str) -> str | None:
    """`reference` resolved against `base` as the browser resolves it, or None."""
    try:
        return str(URL(reference.strip(), base).href)
    except ValueError:
        return None


class ImportMap:
    """The top-level `imports` of a page's import map, resolved as the browser resolves it
    (exact keys, then the longest key ending in '/' that prefixes the specifier)."""

    def __init__(self, imports: dict[str, str] | None = None) -> None:
        self.imports = imports or {}

    @classmethod
    def read(cls, text: str, base: str) -> ImportMap:
        try:
            raw = json.loads(text)
        except ValueError:
            return cls()
        imports = raw.get("imports") if isinstance(raw, dict) else None
        resolved: dict[str, str] = {}
        for key, value in (imports or {}).items() if isinstance(imports, dict) else ():
            if isinstance(key, str) and isinstance(value, str):
                target = join(value, base)
                if target is not None:
                    resolved[_normal_key(key, base)] = target
        return cls(resolved)

    def resolve(self, specifier: str, base: str) -> str | None:
        """The URL a module specifier names from a module at `base`; None for a bare name the
        map does not know (the browser refuses those too)."""
        key = _normal_key(specifier, base)
        if key in self.imports:
            return self.imports[key]
        prefixes = [k for k in self.imports if k.endswith("/") and key.startswith(k)]
        if prefixes:
            best = max(prefixes, key=len)
            return join(key[len(best):], self.imports[best])
        return key if _url_like(specifier) else None


def _url_like(specifier: str) -> bool:
    if specifier.startswith(("/", "./", "../")):
        return True
    try:
        URL(specifier)
    except ValueError:
        return False
    return True


def _normal_key(specifier: str, base: str) -> str:
    if _url_like(specifier):
        return join(specifier, base) or specifier
    return specifier


class Visitor:
    """What the walk asks about each thing a page names. The defaults keep the page as is."""

    inlining = False  # True when the walk's page is the bundle (hints to fetch are dropped)

    def reference(self, url: str, kind: Kind) -> str | None:
        """What replaces a URL attribute (a data: URL), or None to keep it."""
        return None

    def script(self, url: str, module: bool) -> str | None:
        """The text of an external script (a module: its entry text), or None to keep it."""
        return None

    def inline_script(self, text: str, base: str, module: bool) -> str | None:
        return None

    def sheet(self, url: str) -> str | None:
        """The text of a linked style sheet, or None to keep the link."""
        return None

    def inline_sheet(self, text: str, base: str) -> str | None:
        return None

    def declarations(self, text: str, base: str) -> str | None:
        return None


def walk(html: str, page_url: str, visitor: Visitor,
         head_script: str | None = None) -> tuple[str, ImportMap]:
    """Walk the page; returns it as rewritten by `visitor` (with `head_script`, an import
    map, as the first thing in <head>) and the page's own import map, which it removes when
    `head_script` replaces it."""
    tree = LexborHTMLParser(html)
    base = page_url
    base_node = tree.css_first("base[href]")
    if base_node is not None:
        base = join(base_node.attrs.get("href") or "", page_url) or page_url
    imports = ImportMap()
    for node in tree.css('script[type="importmap"]'):
        imports = ImportMap.read(node.text(), base)  # the last one wins here
        if head_script is not None:
            node.decompose()
    styles = tree.css("style")  # the page's own: not those that replace its links below
    for node in tree.css("script"):
        _script(node, base, visitor)
    for node in tree.css("link[href]"):
        _link(node, base, visitor)
    for node in styles:
        text = visitor.inline_sheet(node.text(), base)
        if text is not None:
            _set_text(node, text)
    for node in tree.css("[style]"):
        value = visitor.declarations(node.attrs.get("style") or "", base)
        if value is not None:
            node.attrs["style"] = value
    for tag, attr in _MEDIA:
        for node in tree.css(f"{tag}[{attr}]"):
            _attribute(node, attr, base, visitor, "asset")
    for tag in ("img", "source"):
        for node in tree.css(f"{tag}[srcset]"):
            node.attrs["srcset"] = _srcset(node.attrs.get("srcset") or "", base, visitor)
    for node in tree.css("image"):  # SVG <image href> / xlink:href
        for attr in ("href", "xlink:href"):
            if node.attrs.get(attr):
                _attribute(node, attr, base, visitor, "asset")
    if head_script is not None:
        _insert_import_map(tree, head_script)
    return tree.html or "", imports


def _insert_import_map(tree: LexborHTMLParser, import_map: str) -> None:
    """The import map before any script, but after the page's charset declaration: that must
    stand in the first 1024 bytes, and the map can be megabytes. A page without one gets
    `utf-8`, which is what the bundle is written in."""
    holder = LexborHTMLParser(f'<meta charset="utf-8"><script type="importmap">{import_map}'
                              '</script>').head
    assert holder is not None
    meta, script = holder.css_first("meta"), holder.css_first("script")
    assert meta is not None and script is not None
    charset = tree.css_first('meta[charset], meta[http-equiv="content-type" i]')
    if charset is not None:
        charset.insert_after(script)
        return
    head = tree.head
    assert head is not None  # an HTML5 parse always has one
    first = head.child
    if first is None:
        head.insert_child(meta)
        head.insert_child(script)
    else:
        first.insert_before(meta)
        first.insert_before(script)


def _script(node: LexborNode, base: str, visitor: Visitor) -> None:
    kind = (node.attrs.get("type") or "").strip().lower()
    if kind not in _CLASSIC:
        return
    module = kind == "module"
    src = node.attrs.get("src")
    if src is None:
        text = visitor.inline_script(node.text(), base, module)
        if text is not None:
            _set_text(node, text)
        return
    url = join(src, base)
    if url is None:
        return
    if not module and ("defer" in node.attrs or "async" in node.attrs):
        # Inline text would run at once, before the rest of the page is parsed; a data: URL
        # keeps defer/async meaning what they meant.
        _attribute(node, "src", base, visitor, "script")
        _drop(node, "integrity")
        return
    text = visitor.script(url, module)
    if text is None:
        return
    _drop(node, "src", "integrity", "crossorigin")  # SRI hashes name the original bytes
    _set_text(node, text)


def _link(node: LexborNode, base: str, visitor: Visitor) -> None:
    rel = set((node.attrs.get("rel") or "").lower().split())
    url = join(node.attrs.get("href") or "", base)
    if url is None:
        return
    if "stylesheet" in rel:
        text = visitor.sheet(url)
        if text is None:
            return
        style = LexborHTMLParser("<style></style>").css_first("style")
        assert style is not None
        media = node.attrs.get("media")
        if media:
            style.attrs["media"] = media
        _set_text(style, text)
        node.insert_before(style)
        node.decompose()
    elif rel & {"modulepreload", "preload", "prefetch"}:
        if visitor.inlining:
            node.decompose()  # a hint to warm a file that is inline now, or not there offline
    elif rel & {"icon", "apple-touch-icon", "shortcut"}:
        _attribute(node, "href", base, visitor, "asset")


def _attribute(node: LexborNode, attr: str, base: str, visitor: Visitor, kind: Kind) -> None:
    url = join(node.attrs.get(attr) or "", base)
    if url is None:
        return
    value = visitor.reference(url, kind)
    if value is not None:
        node.attrs[attr] = value


def _srcset(value: str, base: str, visitor: Visitor) -> str:
    parts = []
    for match in _SRCSET.finditer(value):
        if not match.group(1):
            continue
        url = join(match.group(1), base)
        replaced = visitor.reference(url, "asset") if url is not None else None
        parts.append((replaced or match.group(1)) + (match.group(2) or ""))
    return ", ".join(parts)


def _drop(node: LexborNode, *attrs: str) -> None:
    for attr in attrs:
        if attr in node.attrs:
            del node.attrs[attr]


def _set_text(node: LexborNode, text: str) -> None:
    for child in list(node.iter(include_text=True)):
        child.decompose()
    node.insert_child(text)


def css_visit(text: str, base: str, on_url: Callable[[str, _css.Kind], str | None]) -> str:
    """A sheet's URLs resolved against `base` and handed to `on_url` (absolute)."""
    def replace(url: str, kind: _css.Kind) -> str | None:
        absolute = join(url, base)
        return on_url(absolute, kind) if absolute is not None else None
    return _css.rewrite_sheet(text, replace)

