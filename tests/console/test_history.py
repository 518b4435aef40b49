"""Call history and today's numbers come from the call log, so they survive restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from callcenter.calls.models import CallLog
from callcenter.clock import ManualClock
from tests.console.helpers import login, running_app, seed_directory


def _row(lid: str, at: datetime, outcome: str | None, *, rung: list[dict[str, Any]],
         answered_by: str | None = None, wait: float | None = None) -> CallLog:
    return CallLog(linkedid=lid, asterisk="pbx1", community="hupan",
                   caller_number="+8613812345678", caller_name="张伟", ivr_path=["报修"],
                   rung=rung, answered_by=answered_by, started_at=at,
                   answered_at=at + timedelta(seconds=wait or 0) if answered_by else None,
                   ended_at=at + timedelta(minutes=2) if outcome else None,
                   wait_s=wait, outcome=outcome)


async def test_history_and_todays_numbers_from_the_call_log(sessionmaker: Any, db_url: str,
                                                            tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    clock = ManualClock(datetime(2026, 11, 23, 4, 0, tzinfo=UTC))  # 12:00 in Shanghai
    today = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    async with sessionmaker() as s:
        s.add_all([
            _row("a1", today, "answered", rung=[{"target": "8001", "member_name": "Agent 8001"}],
                 answered_by="Agent 8001", wait=12.0),
            _row("a2", today + timedelta(minutes=5), "abandoned", rung=[{"target": "8002"}]),
            _row("a3", today + timedelta(minutes=9), "answered", rung=[{"target": "8002"}],
                 answered_by="8002", wait=4.0),
            _row("live", today + timedelta(minutes=20), None, rung=[{"target": "8001"}]),
            # Yesterday (Shanghai): not in today's numbers.
            _row("old", datetime(2026, 11, 22, 10, 0, tzinfo=UTC), "answered",
                 rung=[{"target": "8001"}], answered_by="8001", wait=30.0),
        ])
        await s.commit()
    async with running_app(db_url, tmp_path, clock=clock) as client:
        await login(client, "xiaoli")
        text = await (await client.get("/history")).text()
        rows = text.split("<tbody>")[1]
        # Mine (rang 8001) and finished, newest first; masked for an agent off the call.
        assert rows.count("<tr>") == 2 and "已接听" in rows and "138****5678" in rows
        assert "13812345678" not in rows
        # Times as the site's clock reads them (01:00 and 10:00 UTC).
        assert "11-23 09:00" in rows and "11-22 18:00" in rows
        await client.post("/logout", data={"csrf_token": _meta(await (await client.get("/agent")).text())})
        await login(client, "boss")
        text = await (await client.get("/history?all=1")).text()
        assert text.split("<tbody>")[1].count("<tr>") == 4 and "放弃" in text
        wall = await (await client.get("/api/console/wall")).json()
        assert wall["today"] == {"day": "2026-11-23", "offered": 4, "answered": 2,
                                 "abandoned": 1, "avg_wait_s": 8.0}


def _meta(text: str) -> str:
    import re

    m = re.search(r'<meta name="csrf-token" content="([^"]*)"', text)
    assert m
    return m.group(1)
