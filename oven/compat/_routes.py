"""Every old route, in the order Starlette tries them."""

from __future__ import annotations

from starlette.routing import BaseRoute

from oven.compat import _app_screenshots, _bakes, _bundles, _grabs, _showcase


def compat_routes() -> list[BaseRoute]:
    return [*_grabs.routes(), *_bakes.routes(), *_showcase.routes(),
            *_app_screenshots.routes(), *_bundles.routes()]
