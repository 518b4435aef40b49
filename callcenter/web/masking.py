"""Owners' numbers masked by role on every HTTP response, at one place.

The rule table is ``callcenter.directory.masking``: supervisors and admins see
full numbers; agents and night duty see them only on the pop of a call that rang
them (a WebSocket frame, made by ``present_pop``); engineers, and requests
nobody is signed in to, never. The handlers need not remember it: this
middleware, outermost, reads each response after every handler and every other
middleware (the error middleware's JSON included) and, for a viewer who may not
see full numbers, rewrites every number in it to ``138****5678``:

* JSON (``application/json``, ``…+json``): masked as text, one pass, when
  that leaves valid JSON (a number can only sit inside a string there, since
  JSON's tokens are parted by quotes, commas and colons, which no number
  spelling spans); value by value (every string, key and integer masked, then
  encoded again) when the body escapes characters (``\\uff11`` is a full-width
  1) or holds a number as an integer;
* any ``text/*`` (pages: text and attributes alike, ``text/csv`` exports,
  plain text): the text as it is.

Other bodies (audio, static files, WebSocket upgrades) are not text and pass.
Numbers the site publishes itself survive: every community's hotline numbers
and its staff's phones (unless an owner has the same number), re-read every
minute; extensions, ids, timestamps, dates and amounts are not numbers in
``callcenter.directory.phone_text``'s sense. A redirect or error raised as an
``HTTPException`` is masked the same way.

Why one layer and not each handler: a handler, a template or a new route that
prints a number (a ticket's description an agent typed, a caller number in an
incident page) is covered without knowing; the test in
``tests/security/test_masking_walk.py`` walks every route of ``app.router`` as
every role to hold it to that.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from sqlalchemy import select

from callcenter.appkeys import CLOCK, SESSIONMAKER
from callcenter.auth.middleware import current_identity
from callcenter.directory.masking import mask_json, mask_text, sees_full_numbers
from callcenter.directory.models import Community, PersonPhone, StaffUser
from callcenter.directory.phones import try_normalize
from callcenter.snapshot import Snapshot

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SiteNumbers:
    """The numbers the site publishes: hotlines and staff phones that are no owner's."""

    def __init__(self, app: web.Application, *, ttl_s: float = 60.0) -> None:
        self._app = app
        self._snapshot: Snapshot[frozenset[str]] | None = None
        self._ttl = ttl_s

    async def _load(self) -> frozenset[str]:
        async with self._app[SESSIONMAKER]() as session:
            hotlines = (await session.scalars(select(Community.hotline_numbers))).all()
            staff = (await session.scalars(
                select(StaffUser.mobile).where(StaffUser.mobile.is_not(None)))).all()
            numbers = {try_normalize(str(raw)) for raws in hotlines for raw in raws or ()}
            staff_numbers = {try_normalize(str(raw)) for raw in staff if raw}
            staff_numbers.discard(None)
            owners = set((await session.scalars(select(PersonPhone.number).where(
                PersonPhone.number.in_(sorted(n for n in staff_numbers if n))))).all()
            ) if staff_numbers else set()
        numbers |= staff_numbers - owners
        return frozenset(n for n in numbers if n)

    async def get(self) -> frozenset[str]:
        if self._snapshot is None:
            self._snapshot = Snapshot(self._load, self._app[CLOCK], ttl_s=self._ttl,
                                      name="site numbers")
        try:
            return await self._snapshot.get()
        except Exception:  # the database is down: mask everything rather than nothing
            log.warning("site numbers not read; masking every number", exc_info=True)
            return frozenset()

    async def close(self) -> None:
        if self._snapshot is not None:
            await self._snapshot.close()


SITE_NUMBERS = web.AppKey("site_numbers", SiteNumbers)


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def mask_body(body: bytes, content_type: str, charset: str | None,
              keep: frozenset[str]) -> bytes | None:
    """The body with its numbers masked, or None when nothing changed (or it is
    not text)."""
    if not (_is_json(content_type) or content_type.startswith("text/")):
        return None
    encoding = charset or "utf-8"
    try:
        text = body.decode(encoding, errors="surrogateescape")
    except LookupError:
        text, encoding = body.decode("utf-8", errors="surrogateescape"), "utf-8"
    json_body = _is_json(content_type)
    if json_body and "\\u" in text:
        # Escaped characters (``\uff11`` is a full-width 1): compare values, not text.
        return _mask_values(text, encoding, keep)
    out = mask_text(text, keep)
    if out == text:
        return None
    if json_body:
        try:
            json.loads(out)
        except ValueError:  # a number outside a string (an integer): value by value
            return _mask_values(text, encoding, keep)
    return out.encode(encoding, errors="surrogateescape")


def _mask_values(text: str, encoding: str, keep: frozenset[str]) -> bytes | None:
    try:
        data = json.loads(text)
    except ValueError:
        out = mask_text(text, keep)
        return None if out == text else out.encode(encoding, errors="surrogateescape")
    masked, changed = mask_json(data, keep)
    if not changed:
        return None
    return json.dumps(masked, ensure_ascii=False, default=str).encode(encoding)


async def _mask(request: web.Request, resp: web.StreamResponse) -> None:
    if not isinstance(resp, web.Response):
        return  # streamed: files, audio, WebSockets
    ident = current_identity(request)
    if ident is not None and sees_full_numbers(ident.role, own_call=False):
        return
    body = resp.body
    if not isinstance(body, bytes) or not body:
        return
    site = request.app.get(SITE_NUMBERS)
    keep = await site.get() if site is not None else frozenset()
    masked = mask_body(body, resp.content_type, resp.charset, keep)
    if masked is not None:
        resp.body = masked


@web.middleware
async def number_masking(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        await _mask(request, exc)
        raise
    await _mask(request, resp)
    return resp


async def _site_numbers(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[SITE_NUMBERS].close()


def setup_masking(app: web.Application) -> None:
    """Mask numbers on every response of ``app``: its outermost middleware. Call
    before the app starts, after its database context is registered."""
    app.middlewares.insert(0, number_masking)
    app[SITE_NUMBERS] = SiteNumbers(app)
    app.cleanup_ctx.append(_site_numbers)
