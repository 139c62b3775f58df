"""How deeply a script or sheet nests its brackets, checked before a parser sees it.

Parsers pay for depth: tinycss2 recurses once per level (Python's stack ends near 400), and
tree-sitter's query over a tree 20,000 levels deep took 1.3 s, 200,000 levels minutes, in a
call that cannot be stopped. Real code nests a few dozen levels. Brackets inside strings and
comments are counted too: an overestimate, which real code does not come near.
"""

from __future__ import annotations

import re

from oven.bundles._errors import TooLarge

JS_MAX_DEPTH = 1000
CSS_MAX_DEPTH = 128
_BRACKETS = re.compile(r"[\[\](){}]")
_OPEN = frozenset("([{")


def check_depth(text: str, limit: int, what: str) -> None:
    """Raise TooLarge if `text` nests brackets deeper than `limit`."""
    depth = 0
    for bracket in _BRACKETS.findall(text):
        if bracket in _OPEN:
            depth += 1
            if depth > limit:
                raise TooLarge(f"{what[:200]} nests brackets more than {limit} deep")
        elif depth:
            depth -= 1
