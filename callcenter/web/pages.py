"""What every HTML page shares: its security headers and its sign-in guard.

``security_headers`` go on each ``text/html`` response the app sends, through
one ``on_response_prepare`` hook (``setup_page_headers``), so a page built
without the templates (the incident and on-call pages) or an error page gets
them as well as those ``render`` builds.

``page(*roles)`` guards a page as ``require_role`` guards the API, but answers
as a browser expects: not signed in → ``302`` to ``/login?next=<this page>``
(a same-origin path, percent-encoded); a wrong role → the 403 page. A client
that asks for JSON and not HTML (``Accept: application/json``) is an API
client: it keeps the JSON 401.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web

from callcenter.auth.middleware import current_identity
from callcenter.auth.redirects import safe_next
from callcenter.errors import Unauthorized
from callcenter.web.templating import TEMPLATES, add_security_headers, render

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

async def _on_prepare(request: web.Request, resp: web.StreamResponse) -> None:
    if resp.content_type == "text/html":
        add_security_headers(resp)


def setup_page_headers(app: web.Application) -> None:
    app.on_response_prepare.append(_on_prepare)


def wants_html(request: web.Request) -> bool:
    """A browser (or a client that accepts anything), not an API client asking for JSON."""
    accept = request.headers.get("Accept", "").lower()
    return "text/html" in accept or "json" not in accept


def login_url(request: web.Request) -> str:
    """``/login?next=<this page>``; a page reached by a form post comes back to nothing
    (its URL does not answer a GET), so just ``/login``."""
    if request.method not in ("GET", "HEAD") or request.path == "/":
        return "/login"
    here = safe_next(request.path_qs)
    return f"/login?next={quote(here, safe='/?=')}" if here else "/login"


def page(*roles: str) -> Callable[[Handler], Handler]:
    """Like ``require_role`` for pages: not signed in → the login page; wrong role → 403 page."""

    def deco(fn: Handler) -> Handler:
        @functools.wraps(fn)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            ident = current_identity(request)
            if ident is None:
                if not wants_html(request):
                    raise Unauthorized("sign in or send Authorization: Bearer <token>")
                raise web.HTTPFound(login_url(request))
            if roles and not ident.has_role(*roles):
                if TEMPLATES not in request.app:
                    raise web.HTTPForbidden(text="无权访问 / forbidden")
                return render(request, "error.html", {
                    "title": "无权访问", "message": "您的角色不能打开这个页面。"}, status=403)
            return await fn(request)

        return wrapper

    return deco
