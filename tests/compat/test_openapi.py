"""The spec describes the route that answers: where an old route and oven's own share a path,
the old one comes first and is the one Starlette runs."""

from __future__ import annotations

from typing import Any

import httpx

from oven._service import Service
from oven.config import load


async def _spec(env: dict[str, str]) -> dict[str, Any]:
    # Built, never started: /openapi.json needs only the route table.
    app = Service(load(None, env=env)).asgi_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://oven") as client:
        spec: dict[str, Any] = (await client.get("/openapi.json")).json()
    return spec


async def test_a_path_both_routes_share_is_described_by_the_old_route_that_answers_it() -> None:
    grab = (await _spec({}))["paths"]["/grab/{format}/{width}/{height}/{piece}"]["get"]
    assert grab["tags"] == ["compat"], grab
    assert {p["name"] for p in grab["parameters"]} >= {"duration", "cacheKey", "skipCache"}


async def test_without_compat_the_path_is_described_by_oven_s_own_route() -> None:
    grab = (await _spec({"OVEN_COMPAT__ENABLED": "false"}))["paths"][
        "/grab/{format}/{width}/{height}/{piece}"]["get"]
    assert grab["tags"] == ["grabs"], grab
