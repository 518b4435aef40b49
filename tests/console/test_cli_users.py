"""callcenter user add / passwd / list / disable, then signing in with it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.auth.passwords import make_hasher, verify_password
from callcenter.cli.main import main
from callcenter.directory.models import StaffUser


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CALLCENTER_DATABASE_URL", db_url)
    return db_url


async def _user(sessionmaker: Any, name: str) -> StaffUser | None:
    async with sessionmaker() as s:
        return (await s.scalars(select(StaffUser).where(StaffUser.username == name))).first()


async def test_add_list_passwd_disable(env: str, sessionmaker: Any,
                                       capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    def run(argv: list[str]) -> int:
        return asyncio.get_running_loop().run_in_executor(None, main, argv)  # type: ignore[return-value]

    assert await run(["user", "add", "xiaoli", "--role", "agent", "--password", "s3cret-pass",
                      "--extension", "8001", "--display-name", "张小丽",
                      "--notify", "wecom=https://qyapi.example/hook"]) == 0
    user = await _user(sessionmaker, "xiaoli")
    assert user is not None and user.role == "agent" and user.extension == "8001"
    assert user.display_name == "张小丽" and user.notify == {"wecom": "https://qyapi.example/hook"}
    assert user.password_hash and user.password_hash.startswith("$argon2id$")
    assert verify_password(make_hasher(), user.password_hash, "s3cret-pass")

    monkeypatch.setattr("sys.stdin", io.StringIO("another-pass-1\n"))
    assert await run(["user", "add", "laowang", "--role", "night_duty", "--password-stdin",
                      "--mobile", "136 1111 2222"]) == 0
    laowang = await _user(sessionmaker, "laowang")
    assert laowang is not None and laowang.mobile == "+8613611112222"

    capsys.readouterr()
    # Bad input: duplicate, short password, bad role handled by argparse, bad mobile, bad notify.
    assert await run(["user", "add", "xiaoli", "--role", "agent", "--password", "s3cret-pass"]) == 1
    assert "已存在" in capsys.readouterr().err
    assert await run(["user", "add", "x2", "--role", "agent", "--password", "short"]) == 1
    assert "至少 8 位" in capsys.readouterr().err
    assert await run(["user", "add", "x3", "--role", "agent", "--password", "long-enough",
                      "--mobile", "12"]) == 1
    assert await run(["user", "add", "x4", "--role", "agent", "--password", "long-enough",
                      "--notify", "sms=1"]) == 1
    assert await run(["user", "add", "x5", "--role", "agent", "--password", "long-enough",
                      "--community", "nowhere"]) == 1
    assert await _user(sessionmaker, "x3") is None and await _user(sessionmaker, "x5") is None

    capsys.readouterr()
    assert await run(["user", "list"]) == 0
    out = capsys.readouterr().out
    assert "xiaoli" in out and "张小丽" in out and "night_duty" in out

    assert await run(["user", "passwd", "xiaoli", "--password", "brand-new-pass"]) == 0
    user = await _user(sessionmaker, "xiaoli")
    assert user is not None and verify_password(make_hasher(), user.password_hash, "brand-new-pass")
    assert await run(["user", "passwd", "ghost", "--password", "brand-new-pass"]) == 1

    assert await run(["user", "disable", "xiaoli"]) == 0
    user = await _user(sessionmaker, "xiaoli")
    assert user is not None and not user.active


async def test_add_with_several_communities_or_all(env: str, sessionmaker: Any,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    from callcenter.directory.models import Community

    def run(argv: list[str]) -> int:
        return asyncio.get_running_loop().run_in_executor(None, main, argv)  # type: ignore[return-value]

    async with sessionmaker() as s:
        s.add_all([Community(code="hupan", name="湖畔花园"), Community(code="binjiang", name="滨江苑"),
                   Community(code="lake", name="湖景")])
        await s.commit()
        ids = {c.code: c.id for c in (await s.scalars(select(Community))).all()}
    pw = ["--password", "long-enough-1"]
    assert await run(["user", "add", "ab", "--role", "supervisor", *pw,
                      "--community", "hupan", "--community", "binjiang"]) == 0
    assert "hupan、binjiang" in capsys.readouterr().out
    assert await run(["user", "add", "hq", "--role", "supervisor", *pw, "--all-communities"]) == 0
    # With several communities on the site, the choice is not left to a default.
    assert await run(["user", "add", "who", "--role", "agent", *pw]) == 1
    assert "--all-communities" in capsys.readouterr().err
    assert await run(["user", "add", "both", "--role", "agent", *pw, "--community", "hupan",
                      "--all-communities"]) == 1
    assert await run(["user", "add", "typo", "--role", "agent", *pw, "--community", "hupan",
                      "--community", "nowhere"]) == 1
    assert "nowhere" in capsys.readouterr().err
    ab, hq = await _user(sessionmaker, "ab"), await _user(sessionmaker, "hq")
    assert ab is not None and ab.scope == frozenset({ids["hupan"], ids["binjiang"]})
    assert hq is not None and hq.scope is None
    for name in ("who", "both", "typo"):
        assert await _user(sessionmaker, name) is None
    assert await run(["user", "list"]) == 0
    listing = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert listing["ab"].rstrip().endswith("binjiang,hupan")
    assert "全部小区" in listing["hq"]
