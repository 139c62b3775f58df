"""The old service's routes, answered by oven's own actors (README "Migrating from the old
service"). Each room maps one family of old routes onto oven's grab queue, baker, showcase and
bundler; none of them captures, encodes or stores anything by itself. Its settings are the
`[compat]` section (oven.config.CompatSettings)."""

from oven.compat._routes import compat_routes

__all__ = ["compat_routes"]
