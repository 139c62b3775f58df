"""The old IPFS routes are out of scope (README "Migrating from the old service"): each answers
oven's 404 JSON, never another route's answer."""

from __future__ import annotations

import httpx
import pytest

from oven._service import Service
from oven.config import load


@pytest.mark.parametrize("method, path", [
    ("POST", "/grab-ipfs"), ("GET", "/keeps/latest"), ("GET", "/keeps/latest/anim"),
    ("GET", "/keeps/all"),
])
async def test_an_ipfs_route_is_a_404_json_error(method: str, path: str) -> None:
    # Built, never started: routing needs only the route table.
    app = Service(load(None, env={})).asgi_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://oven") as client:
        response = await client.request(method, path)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"
