"""The OpenAPI 3.1 document of the JSON API, built from the operations the app serves.

Every operation declared on an ``ApiRoutes`` table and added to the app is in
``app[API_OPERATIONS]`` with its models; this module turns them into the
document (``model_json_schema`` of the same pydantic models that validate the
requests), serves it at ``/api/openapi.json`` and renders ``/api/docs``, a
zh-CN/English page for integrators (a CRM, a WeChat bot) that needs no network.
The document names no person and holds no data: it is public.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from callcenter.auth.sessions import SESSION_COOKIE
from callcenter.web.api import API_OPERATIONS, ERROR_STATUSES, ErrorOut, Operation
from callcenter.web.errors import json_response
from callcenter.web.templating import render, setup_templates

REF = "#/components/schemas/{model}"
TITLE = "物业呼叫中心 API / Call-center API"
ROLE_NOTE = "admin 总可调用 / admin may always call"


@dataclass
class _Cache:
    document: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


OPENAPI_CACHE = web.AppKey("openapi_cache", _Cache)


def _param_schemas(model: type[BaseModel], where: Literal["path", "query"]
                   ) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", "")
        prop.pop("title", None)
        param: dict[str, Any] = {"name": name, "in": where, "required": where == "path"
                                 or name in required, "schema": prop}
        if description:
            param["description"] = description
        params.append(param)
    return params


def _security(op: Operation) -> list[dict[str, list[str]]]:
    if op.roles is None:
        return []
    return [{"bearerAuth": []}, {"sessionCookie": [], "csrfHeader": []}]


def _describe(op: Operation) -> str:
    parts = [op.description] if op.description else []
    if op.roles:
        parts.append(f"角色 / roles: {', '.join(op.roles)}（{ROLE_NOTE}）")
    elif op.roles == ():
        parts.append("任何已登录用户 / any signed-in user")
    return "\n\n".join(parts)


def build_document(operations: list[Operation], *, version: str = "1") -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations``."""
    models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        (ErrorOut, "serialization")]
    for op in operations:
        if op.body_model is not None:
            models.append((op.body_model, "validation"))
        for out in (op.response, *op.extra_statuses.values()):
            if out is not None:
                models.append((out, "serialization"))
    seen: set[tuple[type[BaseModel], str]] = set()
    unique = [m for m in models if not (m in seen or seen.add(m))]  # type: ignore[func-returns-value]
    refs, defs = models_json_schema(unique, ref_template=REF)
    schemas = defs.get("$defs", {})

    def ref(model: type[BaseModel], mode: str) -> dict[str, Any]:
        return dict(refs[(model, mode)])  # type: ignore[index]

    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        responses: dict[str, Any] = {}
        success = {op.status: op.response, **op.extra_statuses}
        for status, out in sorted(success.items()):
            body = ({"content": {"application/json": {"schema": ref(out, "serialization")}}}
                    if out is not None else {})
            responses[str(status)] = {"description": "成功 / ok", **body}
        for status in op.error_statuses():
            responses[str(status)] = {
                "description": ERROR_STATUSES.get(status, "error"),
                "content": {"application/json": {"schema": ref(ErrorOut, "serialization")}}}
        spec: dict[str, Any] = {
            "operationId": op.operation_id, "summary": op.summary, "tags": [op.tag],
            "description": _describe(op), "security": _security(op), "responses": responses}
        if op.roles is not None:
            spec["x-roles"] = list(op.roles)
        params = []
        if op.path_model is not None:
            params += _param_schemas(op.path_model, "path")
        if op.query_model is not None:
            params += _param_schemas(op.query_model, "query")
        if params:
            spec["parameters"] = params
        if op.body_model is not None:
            spec["requestBody"] = {"required": op.body_required, "content": {
                "application/json": {"schema": ref(op.body_model, "validation")}}}
        paths.setdefault(op.path, {})[op.method.lower()] = spec
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": version, "description": (
            "住宅物业呼叫中心的 JSON 接口：工单、紧急呼叫、值班、通话记录、坐席台。\n"
            "JSON API of the call center: tickets, emergency paging, on-call, calls, console.\n\n"
            "认证 / auth: `Authorization: Bearer <token>`（`callcenter token create`），"
            "或浏览器会话 + `X-CSRF-Token`。错误 / errors: "
            '`{"error", "message", "details": {"field"}}`；路径中不可能存在的编号 '
            "（非 1..2147483647 的整数）为 404 / a path id that cannot exist is a 404.")},
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas, "securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer",
                           "description": "API 令牌 / an API token"},
            "sessionCookie": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
            "csrfHeader": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"}}},
    }


def document_of(app: web.Application) -> dict[str, Any]:
    cache = app[OPENAPI_CACHE]
    if cache.document is None:
        cache.document = build_document(app.get(API_OPERATIONS, []))
    return cache.document


async def openapi_json(request: web.Request) -> web.StreamResponse:
    return json_response(document_of(request.app))


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return dict(schemas.get(schema["$ref"].rsplit("/", 1)[-1], {}))
    return schema


def type_label(schema: dict[str, Any]) -> str:
    """``string``, ``integer 1..2147483647``, ``plumbing | fire``, ``TicketOut[]``..."""
    if "$ref" in schema:
        return str(schema["$ref"].rsplit("/", 1)[-1])
    if "anyOf" in schema:
        return " | ".join(type_label(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"], ensure_ascii=False)
    kind = str(schema.get("type", "any"))
    if kind == "array":
        return f"{type_label(schema.get('items', {}))}[]"
    bounds = []
    if "minimum" in schema or "maximum" in schema:
        bounds.append(f"{schema.get('minimum', '')}..{schema.get('maximum', '')}")
    if "maxLength" in schema:
        bounds.append(f"≤{schema['maxLength']} 字 / chars")
    if "format" in schema:
        bounds.append(str(schema["format"]))
    if "pattern" in schema:
        bounds.append(f"/{schema['pattern']}/")
    return " ".join([kind, *bounds])


def _fields(schema: dict[str, Any], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _resolve(schema, schemas)
    required = set(schema.get("required", []))
    return [{"name": name, "type": type_label(prop), "required": name in required,
             "description": prop.get("description", ""),
             "default": json.dumps(prop["default"], ensure_ascii=False) if "default" in prop
             else ""}
            for name, prop in schema.get("properties", {}).items()]


def _example(schema: dict[str, Any], schemas: dict[str, Any], depth: int = 0) -> Any:
    """A small example body from the schema (its examples, defaults and types)."""
    schema = _resolve(schema, schemas)
    if "examples" in schema:
        return schema["examples"][0]
    if "default" in schema:
        return schema["default"]
    if "anyOf" in schema:
        return _example(next((s for s in schema["anyOf"] if s.get("type") != "null"),
                             schema["anyOf"][0]), schemas, depth)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 3:
            return {}
        required = set(schema.get("required", []))
        return {k: _example(v, schemas, depth + 1)
                for k, v in schema.get("properties", {}).items() if k in required}
    if kind == "array":
        return [_example(schema.get("items", {}), schemas, depth + 1)] if depth < 3 else []
    return {"integer": 1, "number": 1.5, "boolean": True, "string": "…", "null": None
            }.get(str(kind))


def docs_context(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document["components"]["schemas"]
    operations = []
    for path, methods in document["paths"].items():
        for method, spec in methods.items():
            body = spec.get("requestBody", {}).get("content", {}).get("application/json", {})
            ok: dict[str, Any] = next(
                (r for s, r in spec["responses"].items() if s.startswith("2")), {})
            ok_schema = ok.get("content", {}).get("application/json", {}).get("schema")
            operations.append({
                "method": method.upper(), "path": path, "id": spec["operationId"],
                "summary": spec["summary"], "description": spec.get("description", ""),
                "tag": spec["tags"][0], "roles": spec.get("x-roles"),
                "parameters": [{"name": p["name"], "in": p["in"], "required": p["required"],
                                "type": type_label(p["schema"]),
                                "description": p.get("description", "")}
                               for p in spec.get("parameters", [])],
                "body": _fields(body["schema"], schemas) if body else [],
                "body_model": type_label(body["schema"]) if body else "",
                "example": json.dumps(_example(body["schema"], schemas), ensure_ascii=False,
                                      indent=2) if body else "",
                "response_model": type_label(ok_schema) if ok_schema else "",
                "statuses": list(spec["responses"]),
            })
    models = [{"name": name, "fields": _fields(schema, schemas)}
              for name, schema in sorted(schemas.items())]
    return {"info": document["info"], "operations": operations, "models": models}


async def api_docs(request: web.Request) -> web.StreamResponse:
    return render(request, "api_docs.html", docs_context(document_of(request.app)))


def setup_api_docs(app: web.Application) -> None:
    """``/api/openapi.json`` and ``/api/docs``: public, built on first request from what
    the app's features declared."""
    app[OPENAPI_CACHE] = _Cache()
    setup_templates(app)
    app.router.add_get("/api/openapi.json", openapi_json)
    app.router.add_get("/api/docs", api_docs)
