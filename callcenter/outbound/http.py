"""HTTP of the outbound dialer.

``GET /api/outbound/jobs?kind=&state=&limit=`` → the jobs of the user's communities,
numbers masked by role; ``GET /api/outbound/jobs/{id}`` → one with every attempt;
``POST /api/outbound/jobs/{id}/cancel`` (supervisor) → a queued job is not called;
``POST /api/outbound/holds/{kind}`` ``{"paused": true}`` (supervisor) → every server
stops dialling that kind within a second; ``PUT /api/people/{id}/do-not-call``
``{"do_not_call": true}`` → the owner asked not to be called by campaigns;
``GET /outbound`` → the page: what is queued, ringing, done, and the surveys the
front desk must make by hand (需人工回访).
"""

from __future__ import annotations

from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import Field
from sqlalchemy import select

from callcenter.appkeys import CLOCK, SESSIONMAKER, SETTINGS
from callcenter.auth.middleware import current_identity
from callcenter.auth.scope import scope_codes
from callcenter.console.staff import staff_ref
from callcenter.directory.masking import sees_full_numbers, show_number
from callcenter.directory.models import Community
from callcenter.directory.phones import try_normalize
from callcenter.outbound import fees
from callcenter.outbound import jobs as service
from callcenter.outbound.feature import OUTBOUND
from callcenter.outbound.models import (
    CAMPAIGN_STATES,
    DIALING,
    DONE,
    FINAL,
    KINDS,
    QUEUED,
    STATE_LABELS,
    OutboundAttempt,
    OutboundJob,
)
from callcenter.outbound.rules import OUTCOME_LABELS
from callcenter.outbound.survey import manual_list
from callcenter.web.api import ApiRoutes, Input, Output, PathId
from callcenter.web.errors import json_response
from callcenter.web.pages import page
from callcenter.web.templating import render
from callcenter.web.zh import local_time

READERS = ("agent", "supervisor")
STEERS = ("supervisor",)
MAX_LIMIT = 500
STATE_GROUPS = {"waiting": (QUEUED, DIALING), "done": (DONE,),
                "ended": tuple(sorted(FINAL - {DONE}))}


class JobsQuery(Input):
    kind: Literal["survey"] | None = Field(None, description="survey 回访调查")
    state: Literal["waiting", "done", "ended"] | None = Field(
        None, description="waiting 等待/呼叫中 / done 已完成 / ended 未接通、未呼叫、已取消")
    limit: int = Field(200, ge=1, le=MAX_LIMIT)


class JobPath(Input):
    job_id: PathId


class HoldPath(Input):
    kind: Literal["survey"]


class HoldIn(Input):
    paused: bool


class PersonPath(Input):
    person_id: PathId


class DoNotCallIn(Input):
    do_not_call: bool


class AttemptOut(Output):
    started_at: str
    answered_at: str | None
    outcome: str | None
    outcome_label: str
    detail: str


class JobOut(Output):
    id: int
    kind: str
    kind_label: str
    community: str
    community_name: str
    number: str = Field(description="按角色脱敏 / masked by role")
    ticket_id: int | None
    state: str
    state_label: str
    attempts: int
    outcome_label: str
    due_at: str = Field(description="本地时间 / local time")
    note: str
    result: dict[str, Any] | None
    history: list[AttemptOut]


class JobsOut(Output):
    jobs: list[JobOut]
    count: int
    paused: list[str]


class HoldOut(Output):
    kind: str
    paused: bool


class CancelOut(Output):
    id: int
    state: str
    state_label: str


class DoNotCallOut(Output):
    person_id: int
    do_not_call: bool


def present(job: OutboundJob, attempts: list[OutboundAttempt], *, tz: ZoneInfo, full: bool,
            names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": job.id, "kind": job.kind, "kind_label": KINDS.get(job.kind, "外呼"),
        "community": job.community, "community_name": names.get(job.community, ""),
        "number": show_number(try_normalize(job.number) or job.number, full),
        "ticket_id": job.ticket_id, "state": job.state,
        "state_label": STATE_LABELS.get(job.state, "外呼"), "attempts": job.attempts,
        "outcome_label": OUTCOME_LABELS.get(job.outcome or "", ""),
        "due_at": local_time(job.due_at, tz), "note": job.note or "",
        "result": job.result,
        "history": [{"started_at": local_time(a.started_at, tz),
                     "answered_at": local_time(a.answered_at, tz) or None,
                     "outcome": a.outcome,
                     "outcome_label": OUTCOME_LABELS.get(a.outcome or "", "呼叫中"),
                     "detail": a.detail or ""} for a in attempts],
    }


async def _listing(request: web.Request, query: JobsQuery) -> dict[str, Any]:
    ident = current_identity(request)
    assert ident is not None
    scope = await scope_codes(request)
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    async with request.app[SESSIONMAKER]() as session:
        rows = await service.list_jobs(
            session, scope, kind=query.kind,
            states=STATE_GROUPS[query.state] if query.state else None, limit=query.limit)
        tries = await service.attempts_of(session, [j.id for j in rows])
        names = dict((await session.execute(select(Community.code, Community.name))).all())
        paused = sorted(await service.holds(session))
    full = sees_full_numbers(ident.role, own_call=False)
    out = [present(j, tries.get(j.id, []), tz=tz, full=full, names=names) for j in rows]
    return {"jobs": out, "count": len(out), "paused": paused}


routes = ApiRoutes("outbound")


@routes.get("/api/outbound/jobs", query=JobsQuery, response=JobsOut, roles=READERS,
            summary="外呼任务 / outbound jobs")
async def list_jobs(request: web.Request, query: JobsQuery) -> dict[str, Any]:
    """Newest change first, of the user's communities."""
    return await _listing(request, query)


@routes.get("/api/outbound/jobs/{job_id}", path_model=JobPath, response=JobOut, roles=READERS,
            summary="一个外呼任务及其每次呼叫 / one job and its attempts")
async def get_job(request: web.Request, path: JobPath) -> dict[str, Any]:
    ident = current_identity(request)
    assert ident is not None
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    async with request.app[SESSIONMAKER]() as session:
        job = await service.get_job(session, path.job_id, await scope_codes(request))
        tries = await service.attempts_of(session, [job.id])
        names = dict((await session.execute(select(Community.code, Community.name))).all())
    return present(job, tries.get(job.id, []), tz=tz,
                   full=sees_full_numbers(ident.role, own_call=False), names=names)


def _back(request: web.Request, payload: dict[str, Any]) -> web.StreamResponse:
    if request.content_type == "application/x-www-form-urlencoded":
        raise web.HTTPFound("/outbound")
    return json_response(payload)


class CancelIn(Input):
    """Nothing to say (the page's form sends its CSRF field)."""


@routes.post("/api/outbound/jobs/{job_id}/cancel", path_model=JobPath, body=CancelIn,
             body_required=False, form=True, response=CancelOut, roles=STEERS, errors=(409,),
             summary="取消外呼 / cancel a queued job")
async def cancel_job(request: web.Request, path: JobPath, body: CancelIn) -> web.StreamResponse:
    ident = current_identity(request)
    assert ident is not None
    me = await staff_ref(request, ident)
    async with request.app[SESSIONMAKER]() as session:
        job = await service.cancel(session, path.job_id, await scope_codes(request),
                                   by=me.display_name, now=request.app[CLOCK].now())
    return _back(request, {"id": job.id, "state": job.state,
                           "state_label": STATE_LABELS[job.state]})


@routes.post("/api/outbound/holds/{kind}", path_model=HoldPath, body=HoldIn, response=HoldOut,
             form=True, roles=STEERS, summary="暂停或恢复一类外呼 / pause or resume a kind of call")
async def put_hold(request: web.Request, path: HoldPath, body: HoldIn) -> web.StreamResponse:
    """Every server stops starting calls of the kind within a second; calls already
    ringing finish. All communities' (a pause is site-wide)."""
    ident = current_identity(request)
    assert ident is not None
    me = await staff_ref(request, ident)
    async with request.app[SESSIONMAKER]() as session:
        await service.set_hold(session, path.kind, body.paused, by=me.display_name,
                               now=request.app[CLOCK].now())
    feature = request.app.get(OUTBOUND)
    if feature is not None:
        feature.dialer.wake()
    return _back(request, {"kind": path.kind, "paused": body.paused})


@routes.put("/api/people/{person_id}/do-not-call", path_model=PersonPath, body=DoNotCallIn,
            response=DoNotCallOut, roles=READERS,
            summary="勿扰：不接受外呼 / an owner's do-not-call flag")
async def put_do_not_call(request: web.Request, path: PersonPath, body: DoNotCallIn
                          ) -> dict[str, Any]:
    """Campaign calls (surveys, reminders) skip the owner from now on, also jobs already
    queued; a callback they asked for and emergency paging are not campaigns."""
    async with request.app[SESSIONMAKER]() as session:
        person = await service.set_do_not_call(session, path.person_id, body.do_not_call,
                                               await scope_codes(request))
    return {"person_id": person.id, "do_not_call": person.do_not_call}


@page(*READERS)
async def outbound_page(request: web.Request) -> web.StreamResponse:
    state = request.query.get("state", "waiting")
    wanted: Literal["waiting", "done", "ended"] | None = (
        state if state in ("waiting", "done", "ended") else None)  # type: ignore[assignment]
    listing = await _listing(request, JobsQuery(kind=None, state=wanted, limit=MAX_LIMIT))
    tz = ZoneInfo(request.app[SETTINGS].timezone)
    scope = await scope_codes(request)
    async with request.app[SESSIONMAKER]() as session:
        manual = await manual_list(session, scope)
        campaigns = [{**fees.campaign_summary(c, n),
                      "state_label": CAMPAIGN_STATES.get(c.state, "")}
                     for c, n in await fees.campaigns(session, None if scope is None
                                                      else list(scope))]
        names = dict((await session.execute(select(Community.code, Community.name))).all())
    ident = current_identity(request)
    assert ident is not None
    full = sees_full_numbers(ident.role, own_call=False)
    manual_rows = [{"ticket_id": m.ticket_id, "ticket_number": m.ticket_number,
                    "number": show_number(try_normalize(m.number) or m.number, full),
                    "attempts": m.attempts,
                    "outcome_label": OUTCOME_LABELS.get(m.last_outcome or "", ""),
                    "ended_at": local_time(m.ended_at, tz)} for m in manual]
    return render(request, "outbound.html", {
        **listing, "state": wanted or "all", "manual": manual_rows, "campaigns": campaigns,
        "communities": {code: name for code, name in names.items()
                        if scope is None or code in scope},
        "kinds": KINDS, "may_steer": ident.has_role(*STEERS)})


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
    app.router.add_get("/outbound", outbound_page)
