"""``callcenter voicemail scan`` on a real spool copy and a real SQLite file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from callcenter.cli.main import main
from tests.conftest import FIXTURES


def test_voicemail_scan_makes_one_ticket_and_is_idempotent(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spool = tmp_path / "spool"
    shutil.copytree(FIXTURES / "asterisk" / "voicemail-spool", spool)
    config = tmp_path / "callcenter.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n\n[voicemail]\nspool_dir = "{spool}"\n',
        encoding="utf-8")
    assert main(["--config", str(config), "voicemail", "scan", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (report["found"], report["registered"]) == (1, 1)
    [job] = report["jobs"]
    assert job["ticket"].startswith("BX") and job["state"] in ("done", "failed")
    assert main(["--config", str(config), "voicemail", "scan"]) == 0
    out = capsys.readouterr().out
    assert "发现 1 条留言：新登记 0，已处理过 1" in out
    stored = list((tmp_path / "data" / "recordings").rglob("*.wav"))
    assert len(stored) == 1
    assert main(["--config", str(config), "voicemail", "purge"]) == 0
    assert "已删除 0 个" in capsys.readouterr().out


def test_an_emergency_found_by_the_cli_opens_its_incident_for_the_server_to_page(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`voicemail scan` runs without the server: the incident and its first step,
    due now, are written where the server's escalation worker claims them."""
    import asyncio
    import contextlib
    from collections.abc import AsyncIterator

    from sqlalchemy import select

    import callcenter.tickets
    from callcenter.db.engine import make_engine, make_sessionmaker, migrate
    from callcenter.paging.models import Incident, PagingTimer
    from tests.recordings.fakes import FakeTranscriber
    from tests.ticketing.directory_data import seed_directory

    spool = tmp_path / "spool"
    shutil.copytree(FIXTURES / "asterisk" / "voicemail-spool", spool)
    data = tmp_path / "data"
    config = tmp_path / "callcenter.toml"
    config.write_text(f'data_dir = "{data}"\ndefault_community = "hupan"\n\n'
                      f'[voicemail]\nspool_dir = "{spool}"\n', encoding="utf-8")
    url = f"sqlite:///{data / 'callcenter.sqlite3'}"

    async def seed() -> None:
        engine = make_engine(url)
        await migrate(engine)
        await seed_directory(make_sessionmaker(engine))
        await engine.dispose()

    asyncio.run(seed())
    said = "三 栋 二 单元 幺 二 零 幺 厨房 水管 爆 了 到处 都 是 水"

    @contextlib.asynccontextmanager
    async def transcriber(_settings: object) -> AsyncIterator[FakeTranscriber]:
        yield FakeTranscriber(default_text=said)  # the decoding is not what is tested here

    monkeypatch.setattr(callcenter.tickets, "transcriber_from_settings", transcriber)
    assert main(["--config", str(config), "voicemail", "scan"]) == 0
    out = capsys.readouterr().out
    assert "紧急事件" in out and "incident opened" in out

    async def incidents() -> tuple[list[Incident], list[PagingTimer]]:
        engine = make_engine(url)
        async with make_sessionmaker(engine)() as s:
            found = list((await s.scalars(select(Incident))).all())
            timers = list((await s.scalars(select(PagingTimer))).all())
        await engine.dispose()
        return found, timers

    [incident], [timer] = asyncio.run(incidents())
    assert incident.state == "open" and incident.category == "plumbing"
    assert (incident.building, incident.unit, incident.room) == ("3", "2", "1201")
    assert timer.incident_id == incident.id and timer.step == 0 and timer.round == 0
    assert timer.claimed_by is None  # left for the server's worker
