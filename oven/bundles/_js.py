"""The module specifiers a script names, found by a real JavaScript parser (tree-sitter), and
rewritten in place.

A regular expression cannot tell `import "x"` from the same words inside a string, a comment or
a template literal; the parser can. Only string literals are rewritten: `import(name)` with a
computed name cannot be known before the piece runs, and is left as it is.
"""

from __future__ import annotations

import ast
import functools
import json
from collections.abc import Callable

import tree_sitter
import tree_sitter_javascript

from oven.bundles._depth import JS_MAX_DEPTH, check_depth

_QUERY = """
(import_statement source: (string) @spec)
(export_statement source: (string) @spec)
(call_expression function: (import) arguments: (arguments . (string) @spec))
(call_expression function: (import) arguments: (arguments . (template_string) @spec))
"""


_CHUNK = 4096
_WINDOW = 32 * 1024


@functools.cache
def _language() -> tree_sitter.Language:
    return tree_sitter.Language(tree_sitter_javascript.language())


@functools.cache
def _query() -> tree_sitter.Query:
    return tree_sitter.Query(_language(), _QUERY)


def _literal(node: tree_sitter.Node) -> str | None:
    """The value of a string literal (or a template without substitutions), or None."""
    if any(c.type == "template_substitution" for c in node.children):
        return None
    raw = (node.text or b"").decode("utf-8", "replace")
    inner = raw[1:-1]
    if "\\" not in inner:
        return inner
    try:  # JS and Python agree on the escapes a specifier could carry (\x, \u, \n, quotes)
        value = ast.literal_eval('"' + inner.replace('"', '\\"') + '"')
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, str) else None


def specifiers(source: str, where: str = "a script") -> list[str]:
    """The literal specifiers of every static import/export-from and dynamic import()."""
    check_depth(source, JS_MAX_DEPTH, where)
    return [spec for _start, _end, spec in _found(source.encode("utf-8"))]


def rewrite_specifiers(source: str, replace: Callable[[str], str | None],
                       where: str = "a script") -> str:
    """`source` with each literal specifier replaced by `replace(spec)` (None keeps it)."""
    check_depth(source, JS_MAX_DEPTH, where)
    data = source.encode("utf-8")
    out: list[bytes] = []
    last = 0
    for start, end, spec in sorted(_found(data)):
        new = replace(spec)
        if new is None:
            continue
        out.append(data[last:start])
        out.append(_js_string(new).encode("utf-8"))
        last = end
    out.append(data[last:])
    return b"".join(out).decode("utf-8")


def _found(data: bytes) -> list[tuple[int, int, str]]:
    # Read in chunks, queried window by window: tree-sitter holds the GIL while it works, and
    # a return to Python now and then is where the interpreter hands it to the event loop
    # (whole, a 380 KB script stalled the loop 0.3 s on a busy host). Not the query's
    # progress_callback: with py-tree-sitter 0.26.1 it crashes the process (SIGSEGV).
    tree = tree_sitter.Parser(_language()).parse(
        lambda offset, _point: data[offset:offset + _CHUNK])
    found: dict[tuple[int, int], str] = {}
    for start in range(0, max(len(data), 1), _WINDOW):
        cursor = tree_sitter.QueryCursor(_query())
        cursor.set_byte_range(start, min(start + _WINDOW, len(data)))
        for nodes in cursor.captures(tree.root_node).values():
            for node in nodes:  # a node across two windows is found twice: kept once
                value = _literal(node)
                if value is not None:
                    found[(node.start_byte, node.end_byte)] = value
    return [(start, end, value) for (start, end), value in found.items()]


def _js_string(value: str) -> str:
    # JSON strings are JS strings; </script could end an inline script early.
    return json.dumps(value).replace("</", "<\\/")
