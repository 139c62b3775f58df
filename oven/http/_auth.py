"""Bearer-token checks, constant time, tokens never logged."""

from __future__ import annotations

import hmac

from pydantic import SecretStr
from starlette.requests import HTTPConnection

from oven.http._errors import ApiError


def presented_token(conn: HTTPConnection, *, allow_query: bool = False) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if allow_query:  # browsers cannot set headers on a WebSocket
        return conn.query_params.get("token")
    return None


def holds_token(conn: HTTPConnection, expected: SecretStr | None) -> bool:
    """Whether the request carries this bearer token (never, when it is not configured)."""
    given = presented_token(conn)
    return expected is not None and given is not None and _same(given, expected)


def require_token(
    conn: HTTPConnection,
    expected: SecretStr | None,
    *,
    what: str,
    setting: str,
    allow_query: bool = False,
) -> None:
    if expected is None:
        raise ApiError(
            403, f"{what} routes are disabled: set {setting} to enable them", code="disabled"
        )
    given = presented_token(conn, allow_query=allow_query)
    if given is None:
        raise ApiError(401, f"{what} routes need 'Authorization: Bearer <token>'")
    if not _same(given, expected):
        raise ApiError(403, "wrong token")


def _same(given: str, expected: SecretStr) -> bool:
    return hmac.compare_digest(given.encode(), expected.get_secret_value().encode())
