"""The JSON API's declarations: one place binds a route to its request and response models.

A domain's ``http.py`` declares its operations on an ``ApiRoutes`` table::

    routes = ApiRoutes("tickets")

    @routes.get("/api/tickets/{ticket_id}", path=TicketPath, response=TicketOut,
                roles=(), errors=(404,), summary="一张工单 / one ticket")
    async def get_ticket(request: web.Request, path: TicketPath) -> TicketOut: ...

    routes.add_to(app)

The wrapper checks the role (``require_role``: 401/403 before anything is read),
then validates the path, query and body into the declared pydantic models and
calls the handler with them as ``path=``, ``query=``, ``body=``. A validation
error is the usual ``InvalidInput`` (400, ``details.field`` names the field);
a path id that cannot exist (not an integer in 1..2**31-1, the range of an
``Integer`` column on PostgreSQL) is a 404 naming the id. The handler returns a
model, a dict or a response; anything but a response goes out through
``json_response`` with the declared status. ``add_to`` also records the
operation under ``API_OPERATIONS`` so ``callcenter.web.openapi`` documents
exactly what the app serves, from the same models.

Strings are checked for what the databases refuse or cannot encode (NUL, lone
surrogates), integers are strict (``true`` is not an id) and bounded, dates
are bounded to years 1900..2999 so converting time zones cannot overflow.
"""

from __future__ import annotations

import codecs
import functools
import inspect
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationError,
)
from pydantic_core import core_schema

from callcenter.auth.middleware import require_role
from callcenter.errors import InvalidInput, NotFound
from callcenter.web.errors import json_response

MAX_ID = 2**31 - 1  # an Integer column on PostgreSQL
MIN_YEAR, MAX_YEAR = 1900, 2999
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")

ERROR_STATUSES = {400: "请求无效 / invalid input", 401: "未登录 / not signed in",
                  403: "无权限 / role not allowed", 404: "不存在 / not found",
                  409: "冲突 / conflict", 503: "服务暂不可用 / unavailable"}


# -- field types ----------------------------------------------------------------


def _clean_text(value: str) -> str:
    if _BAD_CHARS.search(value):
        raise ValueError("含有无效字符（NUL 或孤立代理项） / contains NUL or a lone surrogate")
    return value


def _bounded_date(value: date) -> date:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"年份须在 {MIN_YEAR}..{MAX_YEAR} / year must be {MIN_YEAR}..{MAX_YEAR}")
    return value


def _parse_when(value: str) -> str:
    """A local day ``YYYY-MM-DD`` or an ISO datetime, within the years we handle."""
    value = _clean_text(value).strip()
    try:
        parsed: date = (date.fromisoformat(value) if len(value) == 10
                        else datetime.fromisoformat(value))
    except ValueError:
        raise ValueError("应为 YYYY-MM-DD 或 ISO 时间 / expected YYYY-MM-DD or an ISO datetime"
                         ) from None
    _bounded_date(parsed)
    return value


Text = Annotated[str, AfterValidator(_clean_text)]
"""A string with no NUL and no lone surrogate (PostgreSQL refuses the one, UTF-8 the other)."""
Id = Annotated[int, Field(ge=1, le=MAX_ID, strict=True)]
"""A row id in a body: a JSON integer (``true`` is not one) that fits an Integer column."""
Count = Annotated[int, Field(ge=0, le=MAX_ID, strict=True)]
Flag = Annotated[bool, Field(strict=True)]
"""A JSON ``true``/``false`` (not ``1`` or ``"yes"``)."""
PathId = Annotated[int, Field(ge=1, le=MAX_ID)]
"""A row id in a path or query: digits that fit an Integer column."""
Day = Annotated[date, AfterValidator(_bounded_date)]
When = Annotated[str, Field(max_length=40, examples=["2026-12-01", "2026-12-01T08:30:00+08:00"]),
                 AfterValidator(_parse_when)]
"""A day or an ISO datetime as text, checked here, turned into a datetime by the handler."""
Timestamp = Annotated[str, Field(description="ISO 8601，带时区 / ISO 8601 with an offset",
                                 examples=["2026-12-01T08:30:00+08:00"])]
"""A time in a response."""
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
"""A community code or numeric id, as a path or body names one."""


@dataclass(frozen=True)
class OneOf:
    """``Annotated[str, OneOf(CATEGORIES)]``: one of a domain's keys (an ``enum`` in the
    document), taken from the domain's own table so the two cannot drift apart."""

    values: tuple[str, ...]

    def __init__(self, values: Iterable[str]) -> None:
        object.__setattr__(self, "values", tuple(values))

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler
                                     ) -> core_schema.CoreSchema:
        return core_schema.literal_schema(list(self.values))


def community_ref(value: str | int | None) -> str | int | None:
    """A code, or a numeric id within range (a digits-only code is read as an id)."""
    if isinstance(value, str) and value.isdigit() and int(value) > MAX_ID:
        raise ValueError(f"小区编号超出范围 / community id must be <= {MAX_ID}")
    return value


CommunityRef = Annotated[Code, AfterValidator(community_ref)]


class Input(BaseModel):
    """Request models: unknown keys are ignored, strings stripped of nothing."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Output(BaseModel):
    """Response models: documented fields; a handler may add more than it declares."""

    model_config = ConfigDict(extra="allow")


class ErrorOut(BaseModel):
    """Every error: a stable id, a message (zh-CN / English), details (``field`` for a 400)."""

    error: str = Field(examples=["invalid_input"])
    message: str
    details: dict[str, Any]


# -- operations -----------------------------------------------------------------


Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    roles: tuple[str, ...] | None  # None: public; (): any signed-in user
    path_model: type[BaseModel] | None = None
    query_model: type[BaseModel] | None = None
    body_model: type[BaseModel] | None = None
    body_required: bool = True
    form: bool = False  # also takes an urlencoded form (a page's no-JS post)
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    description: str = ""
    extra_statuses: dict[int, type[BaseModel]] = field(default_factory=dict)

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    def error_statuses(self) -> list[int]:
        statuses = set(self.errors)
        if self.roles is not None:
            statuses.add(401)
            if self.roles:
                statuses.add(403)
        if self.query_model or self.body_model:
            statuses.add(400)
        if self.path_model:
            statuses.add(404)
            if any(not n.endswith("_id") for n in self.path_model.model_fields):
                statuses.add(400)
        return sorted(statuses)


API_OPERATIONS: web.AppKey[list[Operation]] = web.AppKey("api_operations", list)


def _field_of(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def invalid(exc: ValidationError, *, where: str = "body") -> InvalidInput:
    """The first error of ``exc`` as a 400 naming its field (``where`` if it has none)."""
    errors = exc.errors(include_input=False, include_url=False)
    first = errors[0]
    name = _field_of(first["loc"]) if first["loc"] else where
    msg = str(first["msg"]).removeprefix("Value error, ")
    return InvalidInput(f"{name} 无效 / {name}: {msg}", field=name, details={
        "errors": [{"field": _field_of(e["loc"]) if e["loc"] else where,
                    "message": str(e["msg"]).removeprefix("Value error, "), "type": e["type"]}
                   for e in errors[:10]]})


def _check_charset(request: web.Request) -> None:
    charset = request.charset
    if not charset:
        return
    try:
        name = codecs.lookup(charset).name
    except LookupError:
        name = ""
    if name != "utf-8":
        raise InvalidInput(f"JSON 须为 UTF-8 / unsupported charset {charset[:40]!r}",
                           field="Content-Type")


async def read_body(request: web.Request, model: type[BaseModel], *,
                    required: bool = True, form: bool = False) -> BaseModel:
    """The body validated into ``model``: JSON in UTF-8, whatever the Content-Type says
    (or, where ``form``, an urlencoded form: the pages' no-JS posts)."""
    _check_charset(request)
    if form and request.content_type == "application/x-www-form-urlencoded":
        try:
            data: Any = dict(await request.post())
        except ValueError:
            raise InvalidInput("表单无效 / the form cannot be read", field="body") from None
    else:
        raw = await request.read()
        if not raw.strip():
            if required:
                raise InvalidInput("缺少请求体 / a JSON body is required", field="body")
            raw = b"{}"
        try:
            data = json.loads(raw)
        except RecursionError:
            raise InvalidInput("JSON 嵌套过深 / JSON nested too deeply", field="body") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"请求体不是有效 JSON / request body is not valid JSON: {exc}",
                               field=_big_int_field(raw) or "body") from None
        if not isinstance(data, dict):
            raise InvalidInput("请求体须为 JSON 对象 / request body must be a JSON object",
                               field="body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc) from None
    except RecursionError:
        raise InvalidInput("JSON 嵌套过深 / JSON nested too deeply", field="body") from None


_BIG_INT = re.compile(rb'"([A-Za-z_][A-Za-z0-9_]{0,40})"\s*:\s*-?\d{4000}')


def _big_int_field(raw: bytes) -> str | None:
    """The key whose value is an integer too long for Python to read, if that is the error."""
    m = _BIG_INT.search(raw)
    return m.group(1).decode() if m else None


def _parse_path(request: web.Request, model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate(dict(request.match_info))
    except ValidationError as exc:
        first = exc.errors(include_input=False)[0]
        name = _field_of(first["loc"])
        if name.endswith("_id"):
            raise NotFound(f"{name} 不存在 / no such {name.removesuffix('_id')}",
                           details={"field": name}) from None
        raise invalid(exc, where=name) from None


def _names(model: type[BaseModel]) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


def _parse_query(request: web.Request, model: type[BaseModel]) -> BaseModel:
    data: dict[str, Any] = {}
    names = _names(model)
    for key, value in request.query.items():
        if key in names and key not in data and value.strip():
            data[key] = value  # an empty field of a form is no filter
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc, where="query") from None


def _dump(result: Any) -> Any:
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json", by_alias=True)
    return result


class ApiRoutes:
    """One domain's JSON operations; ``add_to(app)`` adds their routes and documents them."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.operations: list[Operation] = []

    def route(self, method: str, path: str, *, summary: str,
              roles: tuple[str, ...] | None = (), path_model: type[BaseModel] | None = None,
              query: type[BaseModel] | None = None, body: type[BaseModel] | None = None,
              body_required: bool = True, form: bool = False,
              response: type[BaseModel] | None = None,
              status: int = 200, errors: tuple[int, ...] = (), description: str = "",
              extra_statuses: dict[int, type[BaseModel]] | None = None,
              ) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.operations.append(Operation(
                method=method, path=path, handler=fn, summary=summary, tag=self.tag,
                roles=roles, path_model=path_model, query_model=query, body_model=body,
                body_required=body_required, form=form, response=response, status=status,
                errors=errors, description=description or inspect.getdoc(fn) or "",
                extra_statuses=extra_statuses or {}))
            return fn

        return deco

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)

    def add_to(self, app: web.Application) -> None:
        if API_OPERATIONS not in app:
            app[API_OPERATIONS] = []
        for op in self.operations:
            app.router.add_route(op.method, op.path, _aiohttp_handler(op))
            app[API_OPERATIONS].append(op)


def _aiohttp_handler(op: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    @functools.wraps(op.handler)
    async def handle(request: web.Request) -> web.StreamResponse:
        kwargs: dict[str, Any] = {}
        if op.path_model is not None:
            kwargs["path"] = _parse_path(request, op.path_model)
        if op.query_model is not None:
            kwargs["query"] = _parse_query(request, op.query_model)
        if op.body_model is not None:
            kwargs["body"] = await read_body(request, op.body_model, required=op.body_required,
                                             form=op.form)
        result = await op.handler(request, **kwargs)
        if isinstance(result, web.StreamResponse):
            return result
        return json_response(_dump(result), status=op.status)

    if op.roles is None:
        return handle
    return require_role(*op.roles)(handle)
