"""HTTP: the Starlette app, JSON errors, auth and OpenAPI."""

from oven.http._app import create_app
from oven.http._auth import require_token
from oven.http._errors import ApiError, error_response, validation_message
from oven.http._openapi import operation

__all__ = [
    "ApiError",
    "create_app",
    "error_response",
    "operation",
    "require_token",
    "validation_message",
]
