"""The emergency pages engineers and night duty open on their phones.

    GET  /incidents                 open and acknowledged incidents, then the last 7 days'
    GET  /incidents/{id}            one incident: where, what, who is being called, and
                                    its timeline in names (never dial strings)
    POST /incidents/{id}/ack        我来处理: stops the paging (303 back to the page)
    POST /incidents/{id}/resolve    已解决, with an optional note (303 back)

Every signed-in staff role may see the incidents of its communities (another
community's is a 404, as one that does not exist); a page that is still paging
refreshes itself every 10 s.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from callcenter.appkeys import CLOCK, SETTINGS
from callcenter.auth.middleware import current_identity
from callcenter.paging.errors import IncidentClosed
from callcenter.paging.http import (
    CHANNEL_NAMES,
    OUTCOME_NAMES,
    PAGING_SERVICE,
    SOURCE_NAMES,
    STATE_NAMES,
    incident_id_of,
    visible_incident,
)
from callcenter.web.pages import page
from callcenter.web.templating import render
from callcenter.web.zh import local_time as local
from callcenter.web.zh import mm_ss

RECENT_DAYS = 7
STATE_SHORT = {"open": "呼叫中", "acknowledged": "已接警", "resolved": "已解决"}


def place_text(building: str, unit: str, room: str) -> str:
    return "".join(x for x in (f"{building}栋" if building else "",
                               f"{unit}单元" if unit else "",
                               f"{room}室" if room else "")) or "位置未知"


def _tz(request: web.Request) -> ZoneInfo:
    return ZoneInfo(request.app[SETTINGS].timezone)


def step_text(round_no: int, step: int) -> str:
    return "主管告警" if step == -1 else f"第{round_no + 1}轮第{step + 1}步"


def timeline_rows(tl: dict[str, Any], tz: ZoneInfo) -> list[dict[str, str]]:
    """The incident's story oldest first: reports, each call or message with the person's
    name and what came of it, the acknowledgement and the resolution."""
    rows: list[tuple[str, dict[str, str]]] = []
    for r in tl["reports"]:
        what = "再次报警" if r["duplicate"] else "报警"
        source = SOURCE_NAMES.get(r["source"], "其他")
        text = f"{what}（{source}）" + (f"：{r['note']}" if r.get("note") else "")
        rows.append((r["received_at"] or "", {"kind": "report", "text": text,
                                              "who": r["caller_number"] or ""}))
    for a in tl["attempts"]:
        who = a["person"] or ("全体主管" if a["step"] == -1 else "无人可呼叫")
        channel = CHANNEL_NAMES.get(a["channel"], "通知")
        outcome = OUTCOME_NAMES.get(a["outcome"], "其他")
        rows.append((a["started_at"] or "", {
            "kind": "attempt", "who": who,
            "text": f"{step_text(a['round'], a['step'])} · {channel}呼叫 {who}：{outcome}",
            "outcome": a["outcome"] or "pending"}))
    if tl["acked_at"]:
        via = {"phone": "电话按1", "console": "网页", "api": "接口"}.get(tl["acked_via"] or "", "")
        rows.append((tl["acked_at"], {"kind": "ack", "who": tl["acked_by"] or "",
                                      "text": f"{tl['acked_by'] or '有人'} 已接警"
                                              + (f"（{via}）" if via else "")}))
    if tl["resolved_at"]:
        rows.append((tl["resolved_at"], {"kind": "resolved", "who": "", "text": "已解决"}))
    rows.sort(key=lambda r: r[0])
    return [{**row, "at": local(at, tz, seconds=True)} for at, row in rows]


def incident_cards(items: list[dict[str, Any]], now: datetime, tz: ZoneInfo
                   ) -> list[dict[str, Any]]:
    """``PagingService.recent``'s incidents with what their cards say (``macros.html``
    ``incident_card``): the place, the local time, the state, how long it has paged."""
    for item in items:
        item["place"] = place_text(item["building"], item["unit"], item["room"])
        item["opened"] = local(item["opened_at"], tz)
        item["state_label"] = STATE_SHORT.get(item["state"], "其他")
        item["waiting"] = (mm_ss((now - item["opened_at"]).total_seconds())
                           if item["state"] == "open" else "")
    return items


@page()
async def incidents_page(request: web.Request) -> web.StreamResponse:
    ident = current_identity(request)
    assert ident is not None
    tz = _tz(request)
    items = incident_cards(await request.app[PAGING_SERVICE].recent(
        scope=ident.communities, days=RECENT_DAYS), request.app[CLOCK].now(), tz)
    live = [i for i in items if i["state"] != "resolved"]
    done = [i for i in items if i["state"] == "resolved"]
    return render(request, "incidents_list.html", {
        "live": live, "done": done, "days": RECENT_DAYS})


@page()
async def incident_page(request: web.Request) -> web.StreamResponse:
    tl = await visible_incident(request, incident_id_of(request))
    tz = _tz(request)
    calling = [a for a in tl["attempts"] if a["outcome"] is None and a["channel"] == "phone"]
    next_steps = [f"{local(n['due_at'], tz)} {step_text(n['round'], n['step'])}"
                  for n in tl["next_step"]]
    return render(request, "incident_detail.html", {
        "tl": tl, "place": place_text(tl["building"], tl["unit"], tl["room"]),
        "state_label": STATE_NAMES.get(tl["state"], "其他"),
        "opened": local(tl["opened_at"], tz), "acked": local(tl["acked_at"], tz),
        "rows": timeline_rows(tl, tz), "calling": [a["person"] for a in calling if a["person"]],
        "next_steps": next_steps, "notice": _NOTICES.get(request.query.get("done", ""), ""),
    })


_NOTICES = {"acked": "已确认接警，呼叫已停止", "resolved": "已标记为已解决",
            "taken": "该事件已有人接警", "closed": "该事件已经解决"}


@page()
async def incident_ack_form(request: web.Request) -> web.StreamResponse:
    """我来处理: acknowledge, then back to the page (303)."""
    ident = current_identity(request)
    assert ident is not None
    incident_id = incident_id_of(request)
    await visible_incident(request, incident_id)
    done = "acked"
    try:
        await request.app[PAGING_SERVICE].acknowledge(
            incident_id, user_id=ident.user_id, name=ident.display_name or ident.username,
            via="console")
    except IncidentClosed:
        done = "taken"  # someone was faster; the page shows who
    raise web.HTTPSeeOther(f"/incidents/{incident_id}?done={done}")


@page()
async def incident_resolve_form(request: web.Request) -> web.StreamResponse:
    """已解决, with the form's optional note (at most 1,000 characters)."""
    ident = current_identity(request)
    assert ident is not None
    incident_id = incident_id_of(request)
    await visible_incident(request, incident_id)
    form = await request.post()
    note = " ".join(str(form.get("note") or "").split())[:1000]
    done = "resolved"
    try:
        await request.app[PAGING_SERVICE].resolve(incident_id, user_id=ident.user_id, note=note)
    except IncidentClosed:
        done = "closed"
    raise web.HTTPSeeOther(f"/incidents/{incident_id}?done={done}")


def add_incident_pages(app: web.Application) -> None:
    app.router.add_get("/incidents", incidents_page)
    app.router.add_get("/incidents/{incident_id}", incident_page)
    app.router.add_post("/incidents/{incident_id}/ack", incident_ack_form)
    app.router.add_post("/incidents/{incident_id}/resolve", incident_resolve_form)
