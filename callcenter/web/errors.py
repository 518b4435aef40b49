"""One middleware turns domain errors into JSON (API) with a stable error id."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from callcenter.errors import DomainError, InvalidInput

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


_SURROGATE = re.compile("[\ud800-\udfff]")


def _dumps(data: Any) -> bytes:
    # A lone surrogate (echoed from input) cannot be UTF-8: it becomes U+FFFD, never an error.
    text = json.dumps(data, ensure_ascii=False, default=str)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text).encode("utf-8")


def json_response(data: Any, *, status: int = 200) -> web.Response:
    """Every JSON response of the server goes out through here (one place to hook)."""
    try:
        body = _dumps(data)
    except (TypeError, ValueError, RecursionError):
        log.exception("response of status %s not serialisable", status)
        status = 500
        body = _dumps({"error": "internal_error", "message": "内部错误 / internal error",
                       "details": {}})
    return web.Response(body=body, status=status, content_type="application/json",
                        charset="utf-8")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as exc:
        if exc.http_status >= 500:
            log.error("%s %s failed: %r", request.method, request.path, exc.message)
        if _wants_page(request):
            return _error_page(request, exc)
        return json_response(exc.to_json(), status=exc.http_status)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_response(
            {"error": "internal_error", "message": "内部错误 / internal error", "details": {}},
            status=500,
        )


_PAGE_TITLES = {400: "请求有误", 403: "无权访问", 404: "未找到", 409: "操作冲突"}


def _wants_page(request: web.Request) -> bool:
    """A browser opening a page (not the JSON API): it gets the error as a page."""
    from callcenter.web.templating import TEMPLATES

    return (request.method == "GET" and not request.path.startswith("/api/")
            and "text/html" in request.headers.get("Accept", "") and TEMPLATES in request.app)


def _error_page(request: web.Request, exc: DomainError) -> web.Response:
    from callcenter.web.templating import render

    return render(request, "error.html", {
        "title": _PAGE_TITLES.get(exc.http_status, "出错了"),
        # Messages are "中文 / English"; the page speaks Chinese.
        "message": exc.message.split(" / ")[0]}, status=exc.http_status)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what is wrong (forms that
    are not declared through ``callcenter.web.api``)."""
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidInput("request body is not valid JSON", field="body") from None
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object", field="body")
    return body
