"""HTTP: open, read and acknowledge incidents; the console's incident page."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from callcenter.auth.middleware import current_identity, require_role
from callcenter.errors import InvalidInput
from callcenter.paging.errors import IncidentClosed
from callcenter.paging.services import PagingService, incident_request_from_json
from callcenter.web.errors import json_response, read_json_object

PAGING_SERVICE = web.AppKey("paging_service", PagingService)

STATE_NAMES = {"open": "处理中（呼叫中）", "acknowledged": "已接警", "resolved": "已解决"}
OUTCOME_NAMES = {
    "accepted": "接警", "passed": "转下一位（按2）", "answered": "已接听", "no_answer": "无人接听",
    "busy": "忙", "failed": "失败", "sent": "已发送", "hung_up": "播报中挂断",
    "no_input": "未按键", "unknown_digit": "按键无效", "interrupted": "服务中断", None: "进行中",
}
CHANNEL_NAMES = {"phone": "电话", "wecom": "企业微信", "dingtalk": "钉钉", "webhook": "Webhook",
                 "email": "邮件"}
SOURCE_NAMES = {"ivr": "热线紧急选项", "voicemail": "紧急留言", "agent": "坐席呼叫",
                "api": "接口"}


def _incident_id(request: web.Request) -> int:
    raw = request.match_info["incident_id"]
    if not raw.isdigit():
        raise InvalidInput("incident id must be a number", field="incident_id")
    return int(raw)


@require_role()
async def post_incident(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    source = body.get("source", "api")
    if source not in ("api", "agent"):
        raise InvalidInput("source: api or agent", field="source")
    req = incident_request_from_json(body, source=str(source))
    result = await request.app[PAGING_SERVICE].open_incident(req)
    return json_response({"incident_id": result.incident_id, "created": result.created,
                          "report_id": result.report_id},
                         status=201 if result.created else 200)


@require_role()
async def get_incident(request: web.Request) -> web.Response:
    return json_response(await request.app[PAGING_SERVICE].timeline(_incident_id(request)))


@require_role()
async def ack_incident(request: web.Request) -> web.Response:
    ident = current_identity(request)
    assert ident is not None
    service = request.app[PAGING_SERVICE]
    incident_id = _incident_id(request)
    await service.acknowledge(incident_id, user_id=ident.user_id,
                              name=ident.display_name or ident.username,
                              via="console" if ident.via == "session" else "api")
    return json_response(await service.timeline(incident_id))


@require_role()
async def resolve_incident(request: web.Request) -> web.Response:
    ident = current_identity(request)
    assert ident is not None
    service = request.app[PAGING_SERVICE]
    incident_id = _incident_id(request)
    body: dict[str, Any] = {}
    if request.can_read_body:
        body = await read_json_object(request)
    await service.resolve(incident_id, user_id=ident.user_id, note=str(body.get("note", "")))
    return json_response(await service.timeline(incident_id))


def _fmt(value: str | None, tz: ZoneInfo) -> str:
    if not value:
        return "—"
    return datetime.fromisoformat(value).astimezone(tz).strftime("%m-%d %H:%M:%S")


@require_role()
async def incident_page(request: web.Request) -> web.Response:
    tl = await request.app[PAGING_SERVICE].timeline(_incident_id(request))
    tz = ZoneInfo("Asia/Shanghai")
    e = html.escape
    place = "".join(x for x in (
        f"{tl['building']}栋" if tl["building"] else "", f"{tl['unit']}单元" if tl["unit"] else "",
        f"{tl['room']}室" if tl["room"] else "")) or "未知"
    rows: list[tuple[str, str]] = [(r["received_at"], (
        f"{'重复报警' if r['duplicate'] else '报警'}（{e(SOURCE_NAMES.get(r['source'], r['source']))}）"
        f" {e(r['caller_number'] or '')} {e(r['note'] or '')}")) for r in tl["reports"]]
    for a in tl["attempts"]:
        who = e(a["person"] or ("全体主管" if a["step"] == -1 else "—"))
        step = "主管告警" if a["step"] == -1 else f"第{a['round'] + 1}轮 第{a['step'] + 1}步"
        err = f"（{e(a['error_code'])}）" if a["error_code"] else ""
        detail = f" <span class=muted>{e(a['detail'])}</span>" if a["detail"] else ""
        rows.append((a["started_at"], (
            f"{step} · {e(CHANNEL_NAMES.get(a['channel'], a['channel']))} → {who}"
            f" {e(a['target'] or '')}：<b>{e(OUTCOME_NAMES.get(a['outcome'], a['outcome']))}</b>"
            f"{err}{detail}")))
    if tl["acked_at"]:
        rows.append((tl["acked_at"], f"<b>{e(tl['acked_by'] or '')} 已接警</b>"))
    rows.sort(key=lambda r: r[0] or "")
    items = "".join(f"<tr><td>{_fmt(t, tz)}</td><td>{text}</td></tr>" for t, text in rows)
    nxt = "".join(f"<li>{_fmt(n['due_at'], tz)} 第{n['round'] + 1}轮 第{n['step'] + 1}步</li>"
                  for n in tl["next_step"])
    ack_form = ""
    ident = current_identity(request)
    if tl["state"] == "open":
        csrf = e(ident.csrf_token) if ident is not None else ""
        ack_form = (f"<form method=post action='/incidents/{tl['id']}/ack'>"
                    f"<input type=hidden name=csrf_token value='{csrf}'>"
                    "<button type=submit>我来处理（确认接警）</button></form>")
    body = f"""
<h1>紧急事件 #{tl['id']}：{e(tl['category_name'])}</h1>
<p>{e(tl['community_name'] or '')} {e(place)} · 状态：<b>{e(STATE_NAMES.get(tl['state'], tl['state']))}</b>
{' · 接警人：' + e(tl['acked_by']) if tl['acked_by'] else ''}</p>
<p>报警电话：{e('、'.join(tl['callers']) or '—')} · 描述：{e(tl['summary'] or '—')}</p>
{ack_form}
<h2>时间线</h2><table><thead><tr><th>时间</th><th>事件</th></tr></thead><tbody>{items}</tbody></table>
{'<h2>下一步</h2><ul>' + nxt + '</ul>' if nxt else ''}
"""
    doc = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="10"><title>紧急事件 #{tl['id']}</title>
<style>body{{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;margin:1.5rem}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}}
.muted{{color:#888}} button{{font-size:1.1rem;padding:.4rem 1rem}}</style></head>
<body>{body}</body></html>"""
    return web.Response(text=doc, content_type="text/html", charset="utf-8")


@require_role()
async def incident_page_ack(request: web.Request) -> web.Response:
    """The page's button: acknowledge, then back to the page (303)."""
    ident = current_identity(request)
    assert ident is not None
    incident_id = _incident_id(request)
    try:
        await request.app[PAGING_SERVICE].acknowledge(
            incident_id, user_id=ident.user_id, name=ident.display_name or ident.username,
            via="console")
    except IncidentClosed:
        pass  # someone was faster; the page shows who
    raise web.HTTPSeeOther(f"/incidents/{incident_id}")


@require_role("supervisor")
async def put_policy(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    max_rounds, restart_wait = body.get("max_rounds", 3), body.get("restart_wait_s", 60)
    for name, value in (("max_rounds", max_rounds), ("restart_wait_s", restart_wait)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput(f"{name}: a non-negative integer", field=name)
    row = await request.app[PAGING_SERVICE].set_policy(
        request.match_info["community"], request.match_info["category"], body.get("steps"),
        max_rounds=max_rounds, restart_wait_s=restart_wait, name=str(body.get("name") or ""))
    return json_response({"id": row.id, "name": row.name, "steps": row.steps,
                          "max_rounds": row.max_rounds, "restart_wait_s": row.restart_wait_s})


def add_paging_routes(app: web.Application) -> None:
    app.router.add_put("/api/escalation-policies/{community}/{category}", put_policy)
    app.router.add_post("/api/incidents", post_incident)
    app.router.add_get("/api/incidents/{incident_id}", get_incident)
    app.router.add_post("/api/incidents/{incident_id}/ack", ack_incident)
    app.router.add_post("/api/incidents/{incident_id}/resolve", resolve_incident)
    app.router.add_get("/incidents/{incident_id}", incident_page)
    app.router.add_post("/incidents/{incident_id}/ack", incident_page_ack)
