"""Each SLA breach is told once to each person it concerns, through their own
webhook (a real ``JsonWebhook`` posting to a real aiohttp server), and counted in
``callcenter_sla_breaches_total`` (both databases, injected clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import generate_latest
from sqlalchemy import update

from callcenter.appkeys import BUS
from callcenter.directory.models import StaffUser
from callcenter.metrics.recorders import BusRecorder
from callcenter.metrics.registry import Metrics
from tests.ticketing.workorder_world import PEOPLE, World, world  # noqa: F401
from ticketing.setup import SLA_WORKER


@pytest.fixture
async def hooks() -> AsyncIterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """A webhook receiver: ``(its base url, [(whose hook, the JSON posted)])``."""
    got: list[tuple[str, dict[str, Any]]] = []

    async def receive(request: web.Request) -> web.Response:
        got.append((request.match_info["who"], await request.json()))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook/{who}", receive)
    srv = TestServer(app, host="127.0.0.1", port=0)
    await srv.start_server()
    try:
        yield str(srv.make_url("/hook/")), got
    finally:
        await srv.close()


def breach_count(metrics: Metrics, kind: str) -> float:
    text = generate_latest(metrics.registry).decode()
    line = f'callcenter_sla_breaches_total{{kind="{kind}"}} '
    found = [ln for ln in text.splitlines() if ln.startswith(line)]
    return float(found[0].split()[-1]) if found else 0.0


async def test_one_notice_per_breach_per_person_and_the_metric_counts_it(
        world: World, hooks: tuple[str, list[tuple[str, dict[str, Any]]]]) -> None:  # noqa: F811
    w = world
    base, got = hooks
    async with w.sm() as s:
        for kind in ("agent", "assignee", "head", "supervisor"):
            username = PEOPLE[kind][0]
            await s.execute(update(StaffUser).where(StaffUser.id == w.users[kind])
                            .values(notify={"webhook": base + username}))
        await s.commit()
    metrics = Metrics()
    recorder = BusRecorder(metrics)
    recorder.subscribe(w.client.app[BUS])
    worker = w.client.app[SLA_WORKER]
    await worker.stop()  # driven by hand
    created = w.clock.now()  # a Monday morning in Shanghai: office hours
    t = await w.new_ticket(summary="3栋2单元1201厨房漏水")
    number = t["number"]

    # 响应超时 → the front desk on duty (the agent), once
    w.clock.set(created + timedelta(minutes=16))
    assert await worker.run_due() == 1
    assert await worker.run_due() == 0
    assert [who for who, _ in got] == ["xiaoli"]
    body = got[0][1]
    assert body["key"] == f"sla:{number}:response"
    assert body["title"] == f"工单超时：{number}"
    assert body["text"] == "超过15分钟未响应：3栋2单元1201厨房漏水"
    assert body["fields"]["超时"] == "超过15分钟未响应"
    assert breach_count(metrics, "response") == 1

    # 派单 to 陈师傅; nobody takes it: the red light → the assignee and the department head
    status, _ = await w.act(t["id"], "agent", "dispatch", department="engineering",
                            assignee_id=w.users["assignee"])
    assert status == 200
    w.clock.set(created + timedelta(hours=2, minutes=1))
    assert await worker.run_due() == 1
    assert sorted(who for who, b in got if b["key"] == f"sla:{number}:red_light") == [
        "chen", "zhou"]
    assert breach_count(metrics, "red_light") == 1

    # 24 hours unresolved → the supervisor
    w.clock.set(created + timedelta(hours=24, minutes=1))
    assert await worker.run_due() == 1
    assert [who for who, b in got if b["key"] == f"sla:{number}:escalation"] == ["boss"]
    assert breach_count(metrics, "escalation") == 1

    # however often the worker sweeps again, or restarts, nobody is told twice
    assert await worker.run_due() == 0
    await worker.start()
    w.clock.set(created + timedelta(hours=30))
    await w.clock.advance(5)
    await worker.stop()
    keys = [(who, b["key"]) for who, b in got]
    assert len(keys) == len(set(keys)) == 4
    assert breach_count(metrics, "response") + breach_count(metrics, "red_light") + \
        breach_count(metrics, "escalation") == 3
    recorder.close()
