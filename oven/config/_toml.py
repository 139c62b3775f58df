"""A small TOML writer for the value shapes our settings use (tables, scalars, lists)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_scalar(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def dumps(
    data: dict[str, Any],
    *,
    comment: Callable[[str], str | None] = lambda key: None,
    prefix: str = "",
) -> str:
    """Render nested dicts as TOML; `comment(dotted_key)` may add a trailing comment per value.

    Non-empty dicts become [tables]; None values are written as comments, since TOML has no null
    and "unset" is what they mean.
    """
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            tables.append((dotted, value))
            continue
        note = comment(dotted)
        tail = f"  # {note}" if note else ""
        if value is None:
            lines.append(f"# {key} = (unset){tail}")
        else:
            lines.append(f"{key} = {_scalar(value)}{tail}")
    parts = ["\n".join(lines)] if lines else []
    for name, table in tables:
        parts.append(f"[{name}]\n" + dumps(table, comment=comment, prefix=f"{name}.").rstrip())
    return "\n\n".join(parts).rstrip() + "\n"
