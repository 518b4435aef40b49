"""Server-rendered pages: Jinja2 with autoescaping, templates in ``web/templates``.

``setup_templates(app)`` installs one ``jinja2.Environment`` under ``TEMPLATES``;
``render(request, "agent.html", {...})`` renders with the signed-in identity and
its CSRF token available to every template (``identity``, ``csrf_token``), so a
form only needs ``{{ csrf_field() }}``. Other features add their own templates
next to these and extend ``base.html``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup

from callcenter.auth.middleware import current_identity

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("templates", jinja2.Environment)

ROLE_LABELS = {"agent": "坐席", "night_duty": "夜班值守", "engineer": "工程", "supervisor": "主管",
               "admin": "管理员"}


def make_environment(extra_dirs: tuple[Path, ...] = ()) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([*extra_dirs, TEMPLATES_DIR]),
        autoescape=jinja2.select_autoescape(["html", "xml"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["role_label"] = lambda role: ROLE_LABELS.get(role, role)
    return env


def setup_templates(app: web.Application, extra_dirs: tuple[Path, ...] = ()) -> None:
    if TEMPLATES in app:
        return
    app[TEMPLATES] = make_environment(extra_dirs)
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=True)


def static_url(request: web.Request, path: str) -> str:
    """The versioned URL of a file in ``web/static`` (``/static/console.css?v=…``)."""
    try:
        return str(request.app.router["static"].url_for(filename=path))
    except KeyError:
        return f"/static/{path}"


def render_string(request: web.Request, name: str, context: dict[str, Any]) -> str:
    env = request.app[TEMPLATES]
    ident = current_identity(request)
    # A bearer token has no session token: its login form carries the login pair.
    csrf = (ident.csrf_token if ident else "") or context.get("login_csrf", "")

    def csrf_field() -> Markup:
        return Markup('<input type="hidden" name="csrf_token" value="{}">').format(csrf)

    def static(path: str) -> str:
        return static_url(request, path)

    ctx = {"identity": ident, "csrf_token": csrf, "csrf_field": csrf_field, "static": static,
           "path": request.path, **context}
    return env.get_template(name).render(ctx)


def render(request: web.Request, name: str, context: dict[str, Any] | None = None, *,
           status: int = 200) -> web.Response:
    text = render_string(request, name, context or {})
    resp = web.Response(text=text, status=status, content_type="text/html", charset="utf-8")
    add_security_headers(resp)
    return resp


SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
}


def add_security_headers(resp: web.StreamResponse) -> None:
    """Set the page headers a response lacks (a page may set its own first).
    ``callcenter.web.pages`` applies them to every ``text/html`` response too."""
    for name, value in SECURITY_HEADERS.items():
        resp.headers.setdefault(name, value)
