"""The URLs a style sheet names (`url(...)`, `@import`), found by a CSS tokenizer (tinycss2)
and rewritten in place; what is not a URL is written back as it was read."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from typing import Any, Literal

import tinycss2
from tinycss2 import ast as css

from oven.bundles._depth import CSS_MAX_DEPTH, check_depth

Kind = Literal["url", "import"]
_PLAIN = re.compile(r"[A-Za-z0-9+/=:;,._~%?&#@!$*'()\[\]-]*")
Replace = Callable[[str, Kind], str | None]


class _Table:
    """New URLs stand in the token tree as short placeholders and are put in after
    serialising: tinycss2 escapes a URL character by character, minutes for the megabytes of
    a font's data: URL."""

    def __init__(self, replace: Replace) -> None:
        self.replace = replace
        self.values: list[str] = []
        self.tag = f"oven-{secrets.token_hex(8)}-"

    def __call__(self, url: str, kind: Kind) -> str | None:
        new = self.replace(url, kind)
        if new is None:
            return None
        self.values.append(new)
        return f"{self.tag}{len(self.values) - 1}"

    def fill(self, text: str) -> str:
        if not self.values:
            return text
        return re.sub(re.escape(self.tag) + r"(\d+)",
                      lambda m: _quoted(self.values[int(m.group(1))])[1:-1], text)


def rewrite_sheet(text: str, replace: Replace) -> str:
    """A whole style sheet with each URL replaced by `replace(url, kind)` (None keeps it)."""
    check_depth(text, CSS_MAX_DEPTH, "a style sheet")
    table = _Table(replace)
    rules = tinycss2.parse_stylesheet(text)  # comments kept: not minifying keeps them
    for rule in rules:
        if isinstance(rule, css.AtRule) and rule.lower_at_keyword == "import":
            _walk(rule.prelude, table, "import")
        elif isinstance(rule, (css.AtRule, css.QualifiedRule)):
            _walk(rule.prelude, table, "url")
            _walk(rule.content or [], table, "url")
    return table.fill(_serialize(rules))


def rewrite_declarations(text: str, replace: Replace) -> str:
    """A `style` attribute's declarations, rewritten like a sheet's."""
    check_depth(text, CSS_MAX_DEPTH, "a style attribute")
    table = _Table(replace)
    values = tinycss2.parse_component_value_list(text)
    _walk(values, table, "url")
    return table.fill(_serialize(values))


def split_imports(text: str) -> tuple[list[tuple[str, str, bool]], str]:
    """The sheet's leading `@import`s as (url, condition, plain) and the sheet without them.
    `plain`: the condition is a media query list only (no `layer`, no `supports()`), so the
    imported sheet can stand in its place as `@media condition { ... }`."""
    check_depth(text, CSS_MAX_DEPTH, "a style sheet")
    rules = tinycss2.parse_stylesheet(text)
    imports: list[tuple[str, str, bool]] = []
    rest = list(rules)
    for rule in rules:
        if isinstance(rule, (css.WhitespaceToken, css.Comment)):
            continue  # stays in `rest`, before the rules it stood before
        if not (isinstance(rule, css.AtRule) and rule.lower_at_keyword in ("import", "charset")):
            break
        rest.remove(rule)
        if rule.lower_at_keyword == "charset":
            continue  # the bundle is UTF-8 throughout
        prelude = [t for t in rule.prelude if not isinstance(t, css.WhitespaceToken)]
        url = _import_url(prelude[0]) if prelude else None
        if url is None:
            continue  # no URL: the browser ignores such a rule too
        after = rule.prelude[rule.prelude.index(prelude[0]) + 1:]
        condition = tinycss2.serialize(_parsed(after)).strip()
        plain = not any(
            (isinstance(t, css.IdentToken) and t.lower_value == "layer")
            or (isinstance(t, css.FunctionBlock) and t.lower_name in ("layer", "supports"))
            for t in prelude[1:])
        imports.append((url, condition, plain))
    return imports, tinycss2.serialize(_parsed(rest))


def _import_url(token: Any) -> str | None:
    if isinstance(token, (css.StringToken, css.URLToken)):
        return str(token.value)
    if isinstance(token, css.FunctionBlock) and token.lower_name == "url":
        strings = [a for a in token.arguments if isinstance(a, css.StringToken)]
        return str(strings[0].value) if strings else None
    return None


def urls(text: str) -> list[tuple[str, Kind]]:
    found: list[tuple[str, Kind]] = []

    def note(url: str, kind: Kind) -> None:
        found.append((url, kind))

    rewrite_sheet(text, note)  # note returns None: nothing is rewritten
    return found


def _walk(nodes: Iterable[Any], replace: Replace, kind: Kind) -> None:
    for node in nodes:
        if isinstance(node, css.URLToken):
            new = replace(node.value, kind)
            if new is not None:
                node.value = new
                node.representation = f"url({_quoted(new)})"
        elif isinstance(node, css.FunctionBlock):
            if node.lower_name in ("url", "src"):
                strings = [a for a in node.arguments if isinstance(a, css.StringToken)]
                if strings:
                    new = replace(strings[0].value, kind)
                    if new is not None:
                        strings[0].value = new
                        strings[0].representation = _quoted(new)
                continue
            _walk(node.arguments, replace, kind)
        elif isinstance(node, css.StringToken) and kind == "import":
            new = replace(node.value, kind)  # @import "x.css" names a sheet by a bare string
            if new is not None:
                node.value = new
                node.representation = _quoted(new)
        elif isinstance(node, (css.ParenthesesBlock, css.SquareBracketsBlock,
                               css.CurlyBracketsBlock)):
            _walk(node.content, replace, kind)


def _quoted(value: str) -> str:
    if _PLAIN.fullmatch(value):  # a data: URL in base64 needs no escape: skip the slow path
        return f'"{value}"'
    return '"' + tinycss2.serializer.serialize_string_value(value) + '"'


def _serialize(nodes: list[Any]) -> str:
    # `</style` inside a sheet would end an inline <style> early; `\/` is `/` to CSS.
    return tinycss2.serialize(_parsed(nodes)).replace("</", "<\\/")


def _parsed(nodes: Iterable[Any]) -> list[Any]:
    """`nodes` without tinycss2's ParseError markers (a bad string or URL, a stray `)`), which
    it cannot write back; the browser drops what they stand for too."""
    kept = []
    for node in nodes:
        if isinstance(node, css.ParseError):
            continue
        if isinstance(node, css.FunctionBlock):
            node.arguments = _parsed(node.arguments)
        elif isinstance(node, (css.ParenthesesBlock, css.SquareBracketsBlock,
                               css.CurlyBracketsBlock)):
            node.content = _parsed(node.content)
        elif isinstance(node, (css.AtRule, css.QualifiedRule)):
            node.prelude = _parsed(node.prelude)
            if node.content is not None:
                node.content = _parsed(node.content)
        kept.append(node)
    return kept
