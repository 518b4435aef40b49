"""The whole app: a voicemail in the spool becomes a ticket visible in the API and
the pages; the recording downloads (with Range) only for signed-in users."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.app import create_core_app
from callcenter.appkeys import SESSION_RESOLVER
from callcenter.auth.identity import Identity
from callcenter.auth.tokens import create_token
from callcenter.clock import ManualClock
from callcenter.settings import settings_from_mapping
from callcenter.tickets import setup_tickets
from recordings.models import Recording
from tests.conftest import FIXTURES
from tests.health_access import HEALTH_HEADERS, HEALTH_HTTP
from tests.recordings.fakes import FakeTranscriber, simple_triage
from tests.ticketing.directory_data import Seeded, seed_directory
from ticketing.pages import transcript_words

SPOOL = FIXTURES / "asterisk" / "voicemail-spool"
WAV = SPOOL / "default" / "8000" / "INBOX" / "msg0000.wav"
SAID = "我 是 五 栋 一 单元 八 零 一 的 水管 漏水 了"


@pytest.fixture
def db_backend() -> str:
    """Pages and downloads do not depend on the backend (the API and ingest tests run on both)."""
    return "sqlite"


@dataclass
class App:
    client: TestClient[web.Request, web.Application]
    headers: dict[str, str]
    seeded: Seeded
    sm: async_sessionmaker[AsyncSession]
    data_dir: Path

    async def get(self, path: str, **kw: Any) -> tuple[int, str, Any]:
        async with self.client.get(path, headers=kw.pop("headers", self.headers), **kw) as r:
            return r.status, r.headers.get("Content-Type", ""), await r.read()

    async def json(self, method: str, path: str, **kw: Any) -> Any:
        async with self.client.request(method, path, headers=self.headers, **kw) as r:
            assert r.status < 300, await r.text()
            return await r.json()


@pytest.fixture
async def app(db_url: str, sessionmaker: async_sessionmaker[AsyncSession],
              tmp_path: Path) -> AsyncIterator[App]:
    seeded = await seed_directory(sessionmaker)
    async with sessionmaker() as s:
        token = await create_token(s, role="agent", name="agent1")
    spool = tmp_path / "spool"
    shutil.copytree(SPOOL, spool)
    data_dir = tmp_path / "data"
    settings = settings_from_mapping({
        "data_dir": str(data_dir), "database": {"url": db_url}, "default_community": "hupan",
        "http": HEALTH_HTTP,
        "voicemail": {"spool_dir": str(spool), "context": "default", "mailboxes": ["8000"]},
    })
    application = create_core_app(settings, clock=ManualClock())
    transcriber = FakeTranscriber(default_text=SAID)
    setup_tickets(application, transcriber=lambda _app: transcriber, triage_fn=simple_triage)

    async def resolver(request: web.Request) -> Identity | None:
        if request.cookies.get("cc_session") == "s1":
            return Identity(user_id=None, username="zhang", role="agent", via="session",
                            display_name="张客服", csrf_token="csrf-1")
        return None

    application[SESSION_RESOLVER] = resolver
    client = TestClient(TestServer(application, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        yield App(client, {"Authorization": f"Bearer {token}"}, seeded, sessionmaker, data_dir)
    finally:
        await client.close()


async def first_ticket(app: App) -> dict[str, Any]:
    for _ in range(1000):  # the ingest runs in the background from start-up
        page = await app.json("GET", "/api/tickets")
        if page["items"]:
            return await app.json("GET", f"/api/tickets/{page['items'][0]['id']}")
        await asyncio.sleep(0.02)
    raise AssertionError("the voicemail never became a ticket")


async def test_spool_message_becomes_a_ticket_with_its_recording(app: App) -> None:
    t = await first_ticket(app)
    assert t["source"] == "voicemail" and t["category"] == "plumbing"
    assert t["room_id"] == app.seeded.room_3_2_1201  # the caller's one room …
    assert t["location_conflict"] is True  # … while the message names 5-1-801
    assert t["said_location"] == {"building": "5", "unit": "1", "room": "801"}
    rec = t["recording"]
    assert rec["url"] == f"/recordings/{t['recording_id']}"
    assert rec["transcription"]["state"] == "done"
    assert rec["transcription"]["text"] == SAID
    assert rec["transcription"]["words"][1]["conf"] < 0.6
    status, _, body = await app.get("/healthz", headers=HEALTH_HEADERS)
    assert status == 200
    assert b'"transcription_jobs": {"done": 1}' in body


async def test_recording_download_with_range_and_no_path_from_the_request(app: App) -> None:
    t = await first_ticket(app)
    url = t["recording"]["url"]
    status, ctype, body = await app.get(url)
    assert status == 200 and ctype == "audio/wav"
    assert body == WAV.read_bytes()
    async with app.client.get(url, headers={**app.headers, "Range": "bytes=0-99"}) as r:
        assert r.status == 206
        assert r.headers["Content-Range"] == f"bytes 0-99/{len(body)}"
        assert await r.read() == body[:100]
    for bad in ("/recordings/999999", "/recordings/abc", "/recordings/..%2F..%2Fetc%2Fpasswd",
                "/recordings/1.wav", "/recordings/%2e%2e"):
        status, _, _ = await app.get(bad)
        assert status == 404, bad
    status, _, _ = await app.get(url, headers={})
    assert status == 401
    # A row whose stored path was tampered with to escape the data dir is refused.
    async with app.sm() as s:
        rec = (await s.scalars(select(Recording))).one()
        rec.stored_path = "../../../../etc/passwd"
        await s.commit()
    status, _, _ = await app.get(url)
    assert status == 404


async def test_purged_recording_is_410(app: App) -> None:
    t = await first_ticket(app)
    from datetime import UTC, datetime
    async with app.sm() as s:
        rec = (await s.scalars(select(Recording))).one()
        rec.purged_at = datetime(2027, 1, 1, tzinfo=UTC)
        await s.commit()
    status, _, body = await app.get(t["recording"]["url"])
    assert status == 410 and b"recording_purged" in body
    status, _, page = await app.get(f"/tickets/{t['id']}")
    assert status == 200 and "录音已超过保存期限" in page.decode()


async def test_list_page_filters_and_escapes(app: App) -> None:
    await first_ticket(app)
    made = await app.json("POST", "/api/tickets", json={
        "category": "noise", "summary": "<script>alert(1)</script>楼上噪音", "source": "agent"})
    status, ctype, raw = await app.get("/tickets")
    html = raw.decode()
    assert status == 200 and ctype == "text/html; charset=utf-8"
    assert '<html lang="zh-CN">' in html and "工单" in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;楼上噪音" in html
    assert made["number"] in html and "BX" in html
    _, _, raw = await app.get("/tickets?category=noise")
    filtered = raw.decode()
    assert made["number"] in filtered and "【给排水】" not in filtered
    _, _, raw = await app.get("/tickets?state=bogus")
    assert "筛选条件有误" in raw.decode()
    _, _, raw = await app.get("/tickets?q=%22%3E%3Cimg")
    assert '"><img' not in raw.decode()


async def test_detail_page_has_player_marked_transcript_and_conflict(app: App) -> None:
    t = await first_ticket(app)
    status, _, raw = await app.get(f"/tickets/{t['id']}")
    html = raw.decode()
    assert status == 200
    assert f'<audio controls preload="none" src="/recordings/{t["recording_id"]}">' in html
    second_word = SAID.split()[1]
    assert f'<mark class="lowconf" title="置信度 0.40">{second_word}</mark>' in html
    assert html.count('class="lowconf"') == 1
    assert "位置存疑" in html
    assert "湖畔花园3栋2单元1201室" in html and "5栋1单元801室" in html


async def test_transition_form_with_a_session(app: App) -> None:
    t = await first_ticket(app)
    cookies = {"cc_session": "s1"}
    status, _, raw = await app.get(f"/tickets/{t['id']}", headers={}, cookies=cookies)
    html = raw.decode()
    assert status == 200 and "张客服" in html
    assert re.search(r'name="csrf_token" value="csrf-1"', html)
    assert 'value="cancel"' in html and 'value="archive"' not in html  # what an agent may do now
    async with app.client.post(f"/tickets/{t['id']}/action", cookies=cookies,
                               data={"action": "cancel", "note": "业主已自行修好",
                                     "csrf_token": "csrf-1"}, allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"] == f"/tickets/{t['id']}"
    got = await app.json("GET", f"/api/tickets/{t['id']}")
    assert got["state"] == "cancelled"
    assert got["events"][-1] == {**got["events"][-1], "actor": "zhang", "note": "业主已自行修好",
                                 "action": "cancel", "actor_role": "agent"}
    async with app.client.post(f"/tickets/{t['id']}/action", cookies=cookies,
                               data={"action": "archive", "csrf_token": "csrf-1"},
                               allow_redirects=False) as r:
        assert r.status == 409
        assert "工单当前为「已取消」，不能归档" in await r.text()


def test_transcript_marks_only_low_confidence_words() -> None:
    words = [{"word": "水管", "conf": 0.9}, {"word": "<b>", "conf": 0.3},
             {"word": "爆", "conf": 0.59}, {"word": "了"}]
    assert [(w["word"], w["low"]) for w in transcript_words(words)] == [
        ("水管", False), ("<b>", True), ("爆", True), ("了", False)]
    assert transcript_words(words)[1]["conf"] == 0.3


async def test_signed_out_browsers_go_to_the_login_page_and_api_clients_get_401(
        app: App) -> None:
    t = await first_ticket(app)
    for path in ("/tickets", f"/tickets/{t['id']}", "/tickets?state=new"):
        async with app.client.get(path, allow_redirects=False) as r:
            assert r.status == 302, path
            assert r.headers["Location"] == f"/login?next={path}"
    async with app.client.get("/api/tickets") as r:
        assert r.status == 401 and r.content_type == "application/json"
        assert (await r.json())["error"] == "unauthorized"


async def test_a_transcript_with_markup_is_shown_as_text(app: App) -> None:
    t = await first_ticket(app)
    async with app.sm() as s:
        from recordings.models import TranscriptionJob

        job = (await s.scalars(select(TranscriptionJob))).one()
        job.words = [{"word": "<script>alert(1)</script>", "conf": 0.2, "start": 0, "end": 1}]
        await s.commit()
    _, _, raw = await app.get(f"/tickets/{t['id']}")
    html = raw.decode()
    assert "<script>alert(1)</script>" not in html
    assert ('<mark class="lowconf" title="置信度 0.20">&lt;script&gt;alert(1)&lt;/script&gt;'
            '</mark>') in html
