"""Loading settings: embedded defaults < TOML file < OVEN_<SECTION>__<KEY> environment."""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from oven.config._schema import Settings, is_live
from oven.config._toml import dumps

ENV_PREFIX = "OVEN_"
ENV_CONFIG = "OVEN_CONFIG"


class ConfigError(Exception):
    """A one-line message naming the file (or variable), the key and what was expected."""


@dataclass
class LoadedConfig:
    settings: Settings
    path: Path | None
    sources: dict[str, str] = field(default_factory=dict)  # dotted key -> "file ..." / "env ..."
    # Dotted key -> value given on the command line (`oven serve --port`): over file and
    # environment, and applied again by every reload.
    overrides: dict[str, Any] = field(default_factory=dict)

    def source_of(self, key: str) -> str:
        return self.sources.get(key, "default")

    def show(self) -> str:
        """Effective values with where each came from; secrets masked."""
        data = _masked(self.settings)
        header = f"# effective configuration (file: {self.path or 'none, embedded defaults'})\n"
        return header + dumps(data, comment=self.source_of)


def _masked(model: BaseModel, *, mask: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            out[name] = _masked(value, mask=mask)
        elif isinstance(value, SecretStr):
            out[name] = "********" if mask else value.get_secret_value()
        else:
            dumped = model.model_dump(mode="json", include={name})
            out[name] = dumped[name]
    return out


def defaults_toml() -> str:
    """The embedded defaults as TOML (what config/oven.toml holds)."""
    return dumps(_masked(Settings(), mask=False))


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def _env_overrides(env: Mapping[str, str]) -> dict[str, tuple[str, Any]]:
    """OVEN_BROWSER__PAGES=4 -> {"browser.pages": ("OVEN_BROWSER__PAGES", 4)}."""
    out: dict[str, tuple[str, Any]] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG or "__" not in name:
            continue
        key = name[len(ENV_PREFIX) :].lower().replace("__", ".")
        try:  # values are TOML literals when they parse as one (4, true, ["a"]), else strings
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out[key] = (name, value)
    return out


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[leaf] = value


def _fields_at(loc: tuple[str, ...]) -> list[str]:
    model: Any = Settings
    for part in loc:
        info = model.model_fields.get(part)
        if info is None:
            return []
        model = info.annotation
        # Optional[Model] and friends: find the BaseModel inside the annotation
        for arg in (*getattr(model, "__args__", ()), model):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                model = arg
                break
        else:
            return []
    return list(model.model_fields)


def _describe(error: Any, where: str) -> str:
    loc = tuple(str(p) for p in error["loc"])
    section, key = ".".join(loc[:-1]), loc[-1]
    place = f"[{section}] {key}" if section else key
    if error["type"] == "extra_forbidden":
        known = _fields_at(loc[:-1])
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
        return f"{where}: unknown key {place}{hint}"
    got = error.get("input")
    shown = "********" if "token" in key or "secret" in key or "uri" in key else repr(got)
    return f"{where}: {place}: {error['msg'].lower()} (got {shown})"


def load(path: Path | None = None, env: Mapping[str, str] | None = None, *,
         overrides: Mapping[str, Any] | None = None) -> LoadedConfig:
    """Build settings from defaults, an optional TOML file, the environment and `overrides`
    (dotted keys from the command line).

    The path comes from the argument, else OVEN_CONFIG, else none (embedded defaults).
    Raises ConfigError with one line per problem, each naming file or variable and key.
    """
    env = os.environ if env is None else env
    if path is None and env.get(ENV_CONFIG):
        path = Path(env[ENV_CONFIG])
    data: dict[str, Any] = {}
    sources: dict[str, str] = {}
    where_of: dict[str, str] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except (IsADirectoryError, PermissionError) as exc:
            raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        for key in _flatten(data):
            sources[key] = f"file {path}"
            where_of[key] = str(path)
    for key, (name, value) in _env_overrides(env).items():
        _set(data, key, value)
        sources[key] = f"env {name}"
        where_of[key] = f"environment {name}"
    for key, value in (overrides or {}).items():
        _set(data, key, value)
        sources[key] = where_of[key] = "command line"
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            dotted = ".".join(str(p) for p in error["loc"])
            where = where_of.get(dotted) or next(
                (
                    w
                    for k, w in where_of.items()
                    if dotted.startswith(k + ".") or k.startswith(dotted + ".")
                ),
                str(path) if path else "defaults",
            )
            problems.append(_describe(error, where))
        raise ConfigError("\n".join(problems)) from None
    return LoadedConfig(settings=settings, path=path, sources=sources,
                        overrides=dict(overrides or {}))


def diff(old: Settings, new: Settings) -> tuple[list[str], list[str]]:
    """Changed keys split into (applied live, needing a restart)."""
    before = _flatten(old.model_dump(mode="json"))
    after = _flatten(new.model_dump(mode="json"))
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    # SecretStr values dump masked: compare them for real
    for section in type(old).model_fields:
        a, b = getattr(old, section), getattr(new, section)
        for name in type(a).model_fields:
            va, vb = getattr(a, name), getattr(b, name)
            if isinstance(va, SecretStr) or isinstance(vb, SecretStr):
                same = (va.get_secret_value() if va else None) == (
                    vb.get_secret_value() if vb else None
                )
                key = f"{section}.{name}"
                if not same and key not in changed:
                    changed.append(key)
    live = [k for k in changed if is_live(k)]
    return live, [k for k in changed if not is_live(k)]
