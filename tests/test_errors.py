"""One error base: every "not now, retry later" answer is a Refusal carrying retry_after_s, and
the HTTP edge maps that base once to its status, JSON error and Retry-After header."""

from __future__ import annotations

import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from oven.actors.baker._actor import BakesBusy
from oven.actors.grab_queue import PieceFrozen, QueueFull
from oven.actors.runtime import MailboxFull
from oven.errors import OvenError, Refusal
from oven.http import ApiError
from oven.http._errors import EXCEPTION_HANDLERS
from oven.showcase import RenderFailed
from oven.supervisor import ActorUnavailable

# (the refusal, its status, its JSON code, its Retry-After header) as the edge answers today.
REFUSALS = [
    (QueueFull(12, retry_after_s=3.2), 429, "busy", "4"),
    (PieceFrozen("throws", until=time.time() + 59.5), 409, "frozen", "60"),
    (BakesBusy(4, retry_after_s=5.0), 429, "busy", "5"),
    (MailboxFull("encoder", 64, retry_after_s=0.2), 429, "busy", "1"),
    (ActorUnavailable("store", "restarting", retry_after_s=2.5), 503, "unavailable", "3"),
    (RenderFailed("home", "the page threw", retry_after_s=30.0), 503, "render_failed", "30"),
]


@pytest.mark.parametrize("refusal", [r for r, *_ in REFUSALS], ids=lambda r: type(r).__name__)
def test_every_error_that_says_when_to_retry_is_a_refusal_and_an_oven_error(
        refusal: Refusal) -> None:
    assert isinstance(refusal, Refusal) and isinstance(refusal, OvenError)
    assert "retry_after_s" not in vars(type(refusal))  # declared once, on Refusal
    assert refusal.retry_after_s > 0


def test_an_api_error_is_an_oven_error_with_its_own_status() -> None:
    error = ApiError(404, "no bake with id 'x'")
    assert isinstance(error, OvenError)
    assert (error.status, error.code, error.retry_after_s) == (404, "not_found", None)


def _raising(exc: Exception) -> Starlette:
    async def endpoint(request: Request) -> None:
        raise exc

    return Starlette(routes=[Route("/", endpoint)], exception_handlers=EXCEPTION_HANDLERS)


@pytest.mark.parametrize(("refusal", "status", "code", "retry_after"), REFUSALS,
                         ids=lambda v: type(v).__name__ if isinstance(v, Exception) else "")
async def test_the_edge_answers_each_refusal_with_its_status_code_message_and_retry_after(
        refusal: Refusal, status: int, code: str, retry_after: str) -> None:
    transport = httpx.ASGITransport(app=_raising(refusal))
    async with httpx.AsyncClient(transport=transport, base_url="http://oven") as client:
        response = await client.get("/")
    assert response.status_code == status
    assert response.json() == {"error": {"code": code, "message": str(refusal)}}
    assert response.headers["retry-after"] == retry_after
