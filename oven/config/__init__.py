"""Configuration: schema, loading with sources, live-reload diffing."""

from oven.config._compat import BundlesSettings, CompatSettings
from oven.config._edge import EdgeSettings
from oven.config._load import ConfigError, LoadedConfig, defaults_toml, diff, load
from oven.config._schema import LIVE_KEYS, Settings, is_live

__all__ = [
    "LIVE_KEYS",
    "BundlesSettings",
    "CompatSettings",
    "ConfigError",
    "EdgeSettings",
    "LoadedConfig",
    "Settings",
    "defaults_toml",
    "diff",
    "is_live",
    "load",
]
