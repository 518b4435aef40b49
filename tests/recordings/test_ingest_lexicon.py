"""A company's own triage lexicon (``[triage] lexicon``): checked when the settings
load, with an error naming the key and the file, and used by the server's
voicemail ingest."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.app import create_core_app
from callcenter.cli.main import main as cli_main
from callcenter.clock import ManualClock
from callcenter.settings import SettingsError, load_settings, settings_from_mapping
from callcenter.tickets import setup_tickets
from tests.recordings.fakes import FakeTranscriber, Spool
from tests.ticketing.directory_data import seed_directory
from ticketing.models import Ticket
from ticketing.triage.rules import LEXICON_DIR

# Not in the built-in lexicon: termites (白蚁) are "other", and an overflowing
# septic tank is sanitation but no emergency.
TERMITES = "我 家 木 地板 有 白蚁 麻烦 来 看 一下"
SEPTIC = "五 栋 门口 化粪池 满 了 溢出 来 了 很 臭"


def company_lexicon(folder: Path) -> Path:
    shutil.copytree(LEXICON_DIR, folder)
    categories = folder / "categories.toml"
    text = categories.read_text(encoding="utf-8")
    assert "\n[public_facility]\n" in text
    categories.write_text(text.replace("\n[public_facility]\n", '\n[public_facility]\n"白蚁" = 5\n'),
                          encoding="utf-8")
    with (folder / "emergencies.toml").open("a", encoding="utf-8") as fh:
        fh.write('\n[septic_overflow]\ncategory = "sanitation"\n'
                 'patterns = ["化粪池.{0,6}(溢|冒)"]\n')
    return folder


def settings_with(folder: Path | str, source: str = "/etc/callcenter.toml") -> None:
    settings_from_mapping({"triage": {"lexicon": str(folder)}}, source)


def test_a_valid_company_lexicon_is_accepted_and_relative_to_the_settings_file(
        tmp_path: Path) -> None:
    company_lexicon(tmp_path / "lex")
    config = tmp_path / "callcenter.toml"
    config.write_text('[triage]\nlexicon = "lex"\n', encoding="utf-8")
    settings = load_settings(config, environ={})
    assert settings.triage.lexicon == tmp_path / "lex"
    assert settings_from_mapping({}).triage.lexicon is None


@pytest.mark.parametrize(("break_it", "file", "says"), [
    (lambda d: shutil.rmtree(d), None, "does not exist"),
    (lambda d: (d / "emergencies.toml").unlink(), "emergencies.toml", "is missing"),
    (lambda d: (d / "categories.toml").write_text("[plumbing\n", encoding="utf-8"),
     "categories.toml", "line 1"),
    (lambda d: (d / "categories.toml").write_text('[termites]\n"白蚁" = 5\n', encoding="utf-8"),
     "categories.toml", "unknown category [termites]"),
    (lambda d: (d / "categories.toml").write_text('[noise]\n"吵" = "loud"\n', encoding="utf-8"),
     "categories.toml", "numeric weights"),
    (lambda d: (d / "emergencies.toml").write_text(
        '[x]\ncategory = "gas"\npatterns = ["{nosuchclass}"]\n', encoding="utf-8"),
     "emergencies.toml", "unknown word class {nosuchclass}"),
    (lambda d: (d / "emergencies.toml").write_text(
        '[x]\ncategory = "gas"\npatterns = ["(unclosed"]\n', encoding="utf-8"),
     "emergencies.toml", "missing )"),
    (lambda d: (d / "emergencies.toml").write_text('[x]\npatterns = ["煤气"]\n', encoding="utf-8"),
     "emergencies.toml", "category"),
    (lambda d: (d / "emergencies.toml").write_text(
        '[x]\ncategory = "ufo"\npatterns = ["飞碟"]\n', encoding="utf-8"),
     "emergencies.toml", "unknown category ufo"),
])
def test_a_bad_lexicon_stops_the_start_naming_the_key_and_the_file(
        tmp_path: Path, break_it: object, file: str | None, says: str) -> None:
    folder = company_lexicon(tmp_path / "lex")
    break_it(folder)  # type: ignore[operator]
    with pytest.raises(SettingsError) as err:
        settings_with(folder)
    assert err.value.key == "triage.lexicon"
    message = str(err.value)
    assert message.startswith("/etc/callcenter.toml: triage.lexicon: ")
    assert str(folder / file) in message if file else str(folder) in message
    assert says in message


def test_a_file_instead_of_a_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "lex.toml").write_text("", encoding="utf-8")
    with pytest.raises(SettingsError, match="is not a folder"):
        settings_with(tmp_path / "lex.toml")


@pytest.fixture
def db_backend() -> str:
    """The lexicon decides triage, not the database (the ingest tests run on both)."""
    return "sqlite"


@pytest.fixture
async def served_tickets(db_url: str, sessionmaker: async_sessionmaker[AsyncSession],
                         tmp_path: Path, request: pytest.FixtureRequest
                         ) -> AsyncIterator[list[Ticket]]:
    """The server (create_core_app + setup_tickets, triage left to the settings)
    ingests two messages; yields their tickets."""
    await seed_directory(sessionmaker)
    spool = Spool(tmp_path / "spool")
    transcriber = FakeTranscriber()
    transcriber.say(spool.add(freq=300), TERMITES)
    transcriber.say(spool.add(freq=600), SEPTIC)
    triage: dict[str, str] = {}
    if request.param:
        triage["lexicon"] = str(company_lexicon(tmp_path / "lex"))
    settings = settings_from_mapping({
        "data_dir": str(tmp_path / "data"), "database": {"url": db_url}, "triage": triage,
        "voicemail": {"spool_dir": str(spool.root), "context": "default", "mailboxes": ["8000"]},
    })
    application = create_core_app(settings, clock=ManualClock())
    setup_tickets(application, transcriber=lambda _app: transcriber)
    client = TestClient(TestServer(application, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        for _ in range(1000):  # the ingest runs in the background from start-up
            async with sessionmaker() as s:
                found = list((await s.scalars(select(Ticket).order_by(Ticket.id))).all())
            if len(found) == 2:
                break
            await asyncio.sleep(0.02)
        yield found
    finally:
        await client.close()


@pytest.mark.parametrize("served_tickets", [True], indirect=True)
async def test_the_server_triages_voicemail_with_the_company_lexicon(
        served_tickets: list[Ticket]) -> None:
    termites, septic = served_tickets
    assert (termites.category, termites.priority) == ("public_facility", "normal")
    assert (septic.category, septic.priority) == ("sanitation", "emergency")


@pytest.mark.parametrize("served_tickets", [False], indirect=True)
async def test_without_the_setting_the_built_in_lexicon_decides(
        served_tickets: list[Ticket]) -> None:
    termites, septic = served_tickets
    assert (termites.category, termites.priority) == ("other", "normal")
    assert (septic.category, septic.priority) == ("sanitation", "normal")


def test_the_triage_command_uses_the_settings_lexicon_as_the_server_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``callcenter triage`` answers as the server would: with the ``[triage] lexicon``
    of the settings file, unless ``--lexicon`` names another folder."""
    company_lexicon(tmp_path / "lex")
    config = tmp_path / "callcenter.toml"
    config.write_text('[triage]\nlexicon = "lex"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # no ./callcenter.toml is read unless asked for
    monkeypatch.delenv("CALLCENTER_CONFIG", raising=False)

    def category(*argv: str, lexicon: Path | None = None) -> str:
        own = ["--lexicon", str(lexicon)] if lexicon else []
        assert cli_main([*argv, "triage", *own, TERMITES]) == 0
        return str(json.loads(capsys.readouterr().out)["category"])

    assert category("--config", str(config)) == "public_facility"
    assert category("--config", str(config), lexicon=LEXICON_DIR) == "other"
    config.unlink()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert category() == "other"  # no settings file: the built-in lexicon
