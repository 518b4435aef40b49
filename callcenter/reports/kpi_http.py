"""The 3:3:4 KPI for supervisors: ``GET /api/reports/kpi`` (JSON), ``/reports/kpi``
(the page) and ``/reports/kpi.csv``.

Query: ``from``/``to`` (local days, ``to`` included; default the last 7 days, at
most 92), ``community`` (code or id, one the person sees; default all of theirs),
``by`` (``day``, ``week`` or ``month``; default ``week``). What counts for whom
and how the score is made: ``ticketing.kpi``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from aiohttp import web
from pydantic import Field, ValidationError

from callcenter.appkeys import SESSIONMAKER
from callcenter.reports import export
from callcenter.reports.figures import mm_ss, percent
from callcenter.reports.scope import Scope, resolve_scope
from callcenter.web.api import ApiRoutes, CommunityRef, Day, Input, Output, invalid
from callcenter.web.pages import page
from callcenter.web.templating import render
from ticketing.kpi import PERIODS, WEIGHTS, KpiReport, PeriodKpi, PersonKpi, build
from ticketing.kpi_rows import staff, ticket_logs
from ticketing.workflow import ROLE_LABELS

ROLES = ("supervisor",)
SIDES = {"front_desk": "前台受理", "doer": "处理人员"}


class KpiQuery(Input):
    from_: Day | None = Field(None, alias="from", description="开始日期（本地）/ first day")
    to: Day | None = Field(None, description="结束日期（含当天）/ last day, included")
    community: CommunityRef | None = Field(None, description="小区编码或编号 / code or id")
    by: Literal["day", "week", "month"] = Field("week", description="按天、周、月 / period")


class PersonKpiOut(Output):
    user_id: int
    username: str
    name: str
    role: str
    handled: int = Field(description="工单量 / tickets that count for the person")
    scored: int = Field(description="有回访评分的工单 / with a 回访 score")
    praised: int = Field(description="回访 4–5 分 / scored 4 or 5")
    resolved: int = Field(description="完工且未重开 / completed, never reopened")
    praise_rate: float | None
    resolution_rate: float | None
    volume_score: float = Field(description="工单量得分 0–100 / against the busiest")
    score: float | None = Field(description="3:3:4 综合得分 0–100")
    score_note: str
    sla_met: dict[str, float | None] = Field(
        description="未超时比例 / share without a breach, per SLA clock")
    mean_s: dict[str, float | None] = Field(description="平均用时（秒）/ mean seconds")


class PeriodKpiOut(Output):
    start: str
    label: str
    front_desk: list[PersonKpiOut]
    doers: list[PersonKpiOut]


class KpiReportOut(Output):
    from_: str = Field(alias="from")
    to: str
    by: str
    community: str | None
    weights: dict[str, float]
    total: PeriodKpiOut
    periods: list[PeriodKpiOut]


async def _kpi(request: web.Request, query: KpiQuery) -> tuple[Scope, KpiReport]:
    scope = await resolve_scope(request, query.from_, query.to, query.community)
    async with request.app[SESSIONMAKER]() as session:
        logs = await ticket_logs(session, scope.start, scope.end, ids=scope.ids)
        people = await staff(session)
    return scope, build(logs, people, first=scope.first, last=scope.last, by=query.by,
                        tz=scope.tz)


def _person(p: PersonKpi) -> dict[str, Any]:
    return {"user_id": p.person.user_id, "username": p.person.username,
            "name": p.person.name, "role": p.person.role, "handled": p.handled,
            "scored": p.scored, "praised": p.praised, "resolved": p.resolved,
            "praise_rate": p.praise_rate, "resolution_rate": p.resolution_rate,
            "volume_score": p.volume_score, "score": p.score, "score_note": p.score_note,
            "sla_met": p.sla_met, "mean_s": p.mean_s}


def _period(p: PeriodKpi) -> dict[str, Any]:
    return {"start": p.start.isoformat(), "label": p.label,
            "front_desk": [_person(x) for x in p.front_desk],
            "doers": [_person(x) for x in p.doers]}


routes = ApiRoutes("reports")


@routes.get("/api/reports/kpi", query=KpiQuery, response=KpiReportOut, roles=ROLES,
            errors=(403,), summary="3:3:4 绩效 / per-person KPI of the front desk and doers")
async def kpi_report(request: web.Request, query: KpiQuery) -> dict[str, Any]:
    scope, report = await _kpi(request, query)
    return {"from": scope.first.isoformat(), "to": scope.last.isoformat(), "by": report.by,
            "community": scope.community, "weights": WEIGHTS,
            "total": _period(report.total), "periods": [_period(p) for p in report.periods]}


def _query(request: web.Request) -> KpiQuery:
    try:
        return KpiQuery.model_validate(dict(request.query))
    except ValidationError as exc:
        raise invalid(exc, where="query") from exc


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


HEADERS = ("时段", "类别", "姓名", "岗位", "工单量", "工单量得分", "回访评分数", "好评率",
           "解决率", "综合得分（3:3:4）", "响应达标", "接单达标", "完工达标", "平均响应",
           "平均接单", "平均完工", "说明")


def _row(period: str, p: PersonKpi) -> list[str | int]:
    return [period, SIDES[p.side], p.person.name, ROLE_LABELS.get(p.person.role, "其他"),
            p.handled, _score(p.volume_score), p.scored, percent(p.praise_rate),
            percent(p.resolution_rate), _score(p.score),
            percent(p.sla_met.get("response")) if "response" in p.sla_met else "",
            percent(p.sla_met.get("red_light")) if "red_light" in p.sla_met else "",
            percent(p.sla_met.get("escalation")) if "escalation" in p.sla_met else "",
            mm_ss(p.mean_s["response"]) if "response" in p.mean_s else "",
            mm_ss(p.mean_s["accept"]) if "accept" in p.mean_s else "",
            mm_ss(p.mean_s["resolve"]) if "resolve" in p.mean_s else "", p.score_note]


def table(report: KpiReport) -> list[Sequence[str | int]]:
    rows: list[Sequence[str | int]] = [HEADERS]
    for period in [report.total, *report.periods]:
        rows += [_row(period.label, p) for p in [*period.front_desk, *period.doers]]
    return rows


@page(*ROLES)
async def kpi_page(request: web.Request) -> web.StreamResponse:
    query = _query(request)
    scope, report = await _kpi(request, query)
    params = {"from": scope.first.isoformat(), "to": scope.last.isoformat(), "by": report.by,
              **({"community": scope.community} if scope.community else {})}
    return render(request, "reports_kpi.html", {
        "scope": scope, "report": report, "periods": PERIODS, "sides": SIDES,
        "communities": sorted(scope.names.items(), key=lambda kv: kv[1]),
        "params": params, "percent": percent, "mm_ss": mm_ss})


@page(*ROLES)
async def kpi_csv(request: web.Request) -> web.StreamResponse:
    scope, report = await _kpi(request, _query(request))
    name = f"kpi-{scope.first.isoformat()}-{scope.last.isoformat()}"
    return web.Response(body=export.to_csv(table(report)), content_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


def setup_kpi(app: web.Application) -> None:
    routes.add_to(app)
    app.router.add_get("/reports/kpi", kpi_page)
    app.router.add_get("/reports/kpi.csv", kpi_csv)
