"""OpenAPI from the route table: each endpoint declares its models with @operation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.routing import BaseRoute, Route, WebSocketRoute

F = TypeVar("F", bound=Callable[..., Any])

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


@dataclass
class Operation:
    summary: str
    body: type[BaseModel] | None = None
    responses: dict[int, type[BaseModel] | str | None] = field(default_factory=dict)
    query: dict[str, dict[str, Any]] = field(default_factory=dict)
    headers: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    secured: bool = False


def operation(summary: str, **kw: Any) -> Callable[[F], F]:
    """Attach OpenAPI facts to an endpoint; responses map status -> model, media type or None."""

    def mark(fn: F) -> F:
        fn.__openapi__ = Operation(summary, **kw)  # type: ignore[attr-defined]
        return fn

    return mark


def _path_params(path: str) -> list[dict[str, Any]]:
    params = []
    for part in path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            name, _, kind = part[1:-1].partition(":")
            schema = {"type": "integer"} if kind == "int" else {"type": "string"}
            params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return params


def build_openapi(routes: list[BaseRoute], *, title: str, version: str) -> dict[str, Any]:
    ops: list[tuple[str, str, Operation]] = []
    models: set[type[BaseModel]] = set()
    for route in routes:
        if isinstance(route, WebSocketRoute) or not isinstance(route, Route):
            continue
        op = getattr(route.endpoint, "__openapi__", None)
        if op is None:
            continue
        for method in sorted(route.methods or {"GET"}):
            if method == "HEAD":
                continue
            ops.append((route.path, method.lower(), op))
        if op.body is not None:
            models.add(op.body)
        models.update(m for m in op.responses.values() if isinstance(m, type))
    refs, schema = models_json_schema(
        [(m, "serialization") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    components = dict(schema.get("$defs", {}))
    components["Error"] = ERROR_SCHEMA
    paths: dict[str, dict[str, Any]] = {}
    for path, method, op in ops:
        spec_path = path.replace(":int}", "}").replace(":path}", "}")
        entry: dict[str, Any] = {"summary": op.summary, "tags": op.tags, "responses": {}}
        params = _path_params(path) + [
            {"name": name, "in": "query", "required": False, "schema": sch}
            for name, sch in op.query.items()
        ] + [
            {"name": name, "in": "header", "required": False, "schema": sch}
            for name, sch in op.headers.items()
        ]
        if params:
            entry["parameters"] = params
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(op.body, "serialization")]}},
            }
        if op.secured:
            entry["security"] = [{"bearer": []}]
        for status, model in (op.responses or {200: None}).items():
            if isinstance(model, type):
                content = {"application/json": {"schema": refs[(model, "serialization")]}}
                entry["responses"][str(status)] = {"description": "OK", "content": content}
            elif isinstance(model, str):
                entry["responses"][str(status)] = {"description": "OK", "content": {model: {}}}
            else:
                entry["responses"][str(status)] = {"description": "OK"}
        entry["responses"]["default"] = {
            "description": "error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        # Starlette answers with the first route that matches, so the spec describes that one
        # (the old service's /grab/... comes before oven's own, see oven.compat).
        paths.setdefault(spec_path, {}).setdefault(method, entry)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
