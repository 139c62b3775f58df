"""JSON error bodies for every 4xx/5xx: {"error": {"code": "...", "message": "..."}}."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pykka
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from oven.actors.runtime import AskTimeout
from oven.errors import OvenError, Refusal
from oven.webhooks import CallbackRefused

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media",
    422: "invalid",
    429: "busy",
    500: "internal",
    503: "unavailable",
    504: "timeout",
}


class ApiError(OvenError):
    """An answer decided at the edge: any status, its code, and a Retry-After when it helps."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        retry_after_s: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.retry_after_s = retry_after_s
        self.extra = extra or {}


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    retry_after_s: float | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code or _CODES.get(status, "error"), "message": message}
    body.update(extra or {})
    headers = {}
    if retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def validation_message(exc: ValidationError) -> tuple[str, list[dict[str, Any]]]:
    details = [
        {"field": ".".join(str(p) for p in e["loc"]) or "body",
         "message": e["msg"].removeprefix("Value error, ")}
        for e in exc.errors()
    ]
    first = details[0]
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    if first["field"] == "body" and ": " in first["message"]:
        return first["message"] + more, details  # a model-level rule that names its field
    return f"{first['field']}: {first['message']}{more}", details


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(
        exc.status, exc.message, code=exc.code, retry_after_s=exc.retry_after_s, extra=exc.extra
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route for {request.method} {request.url.path}"
    return error_response(exc.status_code, message)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    message, details = validation_message(exc)
    return error_response(422, message, extra={"details": details})


async def _refusal(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refusal)
    return error_response(exc.status, str(exc), code=exc.code, retry_after_s=exc.retry_after_s)


async def _actor_dead(request: Request, exc: Exception) -> Response:
    # pykka's own error for an actor that stopped between lookup and ask: as ActorUnavailable.
    return error_response(503, str(exc) or "a required actor is not available", retry_after_s=1.0)


async def _timeout(request: Request, exc: Exception) -> Response:
    return error_response(503, str(exc), code="timeout", retry_after_s=2)


async def _callback_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CallbackRefused)
    return error_response(exc.status, f"callback_url: {exc}", code=exc.code)


async def _unhandled(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, f"internal error: {type(exc).__name__}")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ApiError: _api_error,
    HTTPException: _http_error,
    ValidationError: _validation_error,
    Refusal: _refusal,  # MailboxFull, ActorUnavailable, QueueFull, PieceFrozen, BakesBusy, ...
    pykka.ActorDeadError: _actor_dead,
    AskTimeout: _timeout,
    CallbackRefused: _callback_refused,
    Exception: _unhandled,
}


async def json_body(request: Request) -> Any:
    """The body parsed as JSON, whatever its content type, or a 400 that says why not."""
    try:
        return json.loads(await request.body())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "body is not valid JSON: nested too deeply") from None


async def json_object(request: Request, *, what: str = "the body",
                      not_object_status: int = 422) -> dict[str, Any]:
    """A JSON object body, or the 4xx that says what was wrong with it (415 without the JSON
    content type, 400 for what is not JSON, `not_object_status` for JSON that is no object)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != \
            "application/json":
        raise ApiError(415, f"send {what} as JSON with 'Content-Type: application/json'")
    data = await json_body(request)
    if not isinstance(data, dict):
        raise ApiError(not_object_status, "body: expected a JSON object")
    return data
