"""Server-rendered pages without a template engine: ``string.Template`` files
under ``callcenter/web/templates`` and escaping by default.

Every value put into a template is HTML-escaped unless it is wrapped in
``Safe`` (markup this code built itself from escaped parts). A page is its
body template rendered, then placed into ``tickets_base.html`` as ``$content`` (``base.html`` is the
console's Jinja2 layout).
"""

from __future__ import annotations

import functools
import html
from collections.abc import Iterable
from importlib import resources
from string import Template
from typing import Any

from aiohttp import web


class Safe(str):
    """Markup that is already safe to emit as is."""


def esc(value: Any) -> Safe:
    if isinstance(value, Safe):
        return value
    if value is None:
        return Safe("")
    return Safe(html.escape(str(value), quote=True))


def join(parts: Iterable[Any], sep: str = "") -> Safe:
    return Safe(sep.join(esc(p) for p in parts))


@functools.cache
def template(name: str) -> Template:
    text = resources.files("callcenter.web").joinpath("templates", name).read_text(encoding="utf-8")
    return Template(text)


def render(name: str, **values: Any) -> Safe:
    """Render a template; every value escaped unless ``Safe``. A missing key is an error."""
    return Safe(template(name).substitute({k: esc(v) for k, v in values.items()}))


def page(body_template: str, *, title: str, user: str = "", status: int = 200,
         **values: Any) -> web.Response:
    body = render(body_template, **values)
    text = render("tickets_base.html", title=title, user=user, content=body)
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store",
                                 "X-Content-Type-Options": "nosniff",
                                 "Referrer-Policy": "same-origin"})
