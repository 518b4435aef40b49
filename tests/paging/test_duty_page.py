"""/duty, night duty's home, in the whole app: who is on call, the open emergencies
and how many missed callers wait to be rung back (the worklist)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from callcenter.app import create_app
from callcenter.appkeys import CALLBACKS
from callcenter.settings import FastAgiSettings
from tests.calls.test_callbacks import ended
from tests.console.helpers import OWNER_MOBILE, login, make_settings, seed_directory, serving


async def test_night_duty_sees_the_callers_waiting_to_be_rung_back(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    settings = replace(make_settings(db_url, tmp_path), default_community="hupan",
                       fastagi=FastAgiSettings(enabled=False))
    async with serving(create_app(settings, transcribe=False)) as client:
        await login(client, "laowang")
        text = await (await client.get("/duty")).text()
        assert "没有待回拨的未接来电" in text
        await client.app[CALLBACKS].handle(ended(
            "n-1", "abandoned", started=datetime.now(UTC) - timedelta(minutes=5), lasted=40,
            number=OWNER_MOBILE, queue="frontdesk", ivr_path=["人工服务"]))
        text = await (await client.get("/duty")).text()
        assert '<a href="/callbacks">待回拨 1 个</a>' in text
        assert "湖畔花园 · 当前值班" in text
