"""Signing in and out, sessions that expire, CSRF on every state-changing request."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from callcenter.app import create_app
from callcenter.auth.sessions import SESSION_COOKIE
from callcenter.clock import ManualClock
from callcenter.settings import FastAgiSettings
from tests.console.helpers import (
    PASSWORD,
    login,
    make_settings,
    running_app,
    seed_directory,
    serving,
)


async def _login_form_token(client: Any) -> str:
    import re

    text = await (await client.get("/login")).text()
    m = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert m
    return m.group(1)


async def test_login_sets_session_and_reaches_agent_page(sessionmaker: Any, db_url: str,
                                                         tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path) as client:
        resp = await client.get("/agent", allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"].startswith("/login")
        token = await _login_form_token(client)
        resp = await client.post("/login", data={"username": "xiaoli", "password": PASSWORD,
                                                 "csrf_token": token}, allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == "/agent"
        set_cookie = [v for v in resp.headers.getall("Set-Cookie") if v.startswith(SESSION_COOKIE)]
        assert set_cookie and "HttpOnly" in set_cookie[0] and "SameSite=Lax" in set_cookie[0]
        page = await client.get("/agent")
        text = await page.text()
        assert page.status == 200
        assert "坐席台" in text and "XIAOLI" in text and 'name="csrf-token" content=""' not in text


async def test_wrong_password_and_unknown_user_are_refused(sessionmaker: Any, db_url: str,
                                                           tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path) as client:
        for user, pw in (("xiaoli", "wrong-password"), ("nobody", PASSWORD), ("xiaoli", "")):
            token = await _login_form_token(client)
            resp = await client.post("/login", data={"username": user, "password": pw,
                                                     "csrf_token": token}, allow_redirects=False)
            assert resp.status == 401
            assert "用户名或密码错误" in await resp.text()
        assert (await client.get("/agent", allow_redirects=False)).status == 302


async def test_login_form_without_its_csrf_token_is_refused(sessionmaker: Any, db_url: str,
                                                            tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path) as client:
        await client.get("/login")
        resp = await client.post("/login", data={"username": "xiaoli", "password": PASSWORD,
                                                 "csrf_token": "forged"}, allow_redirects=False)
        assert resp.status == 403
        assert (await client.get("/agent", allow_redirects=False)).status == 302


async def test_repeated_failures_are_rate_limited(sessionmaker: Any, db_url: str,
                                                  tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path, login_limit=3) as client:
        for _ in range(3):
            token = await _login_form_token(client)
            r = await client.post("/login", data={"username": "xiaoli", "password": "nope-nope",
                                                  "csrf_token": token}, allow_redirects=False)
            assert r.status == 401
        token = await _login_form_token(client)
        # Even the right password is refused while the limit holds.
        r = await client.post("/login", data={"username": "xiaoli", "password": PASSWORD,
                                              "csrf_token": token}, allow_redirects=False)
        assert r.status == 429 and "登录失败次数过多" in await r.text()


async def test_session_expires(sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    clock = ManualClock()
    async with running_app(db_url, tmp_path, clock=clock, max_age_s=600) as client:
        await login(client, "xiaoli")
        assert (await client.get("/agent", allow_redirects=False)).status == 200
        await clock.advance(599)
        assert (await client.get("/agent", allow_redirects=False)).status == 200
        await clock.advance(2)
        resp = await client.get("/agent", allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"].startswith("/login")
        api = await client.get("/api/console/search?q=张伟")
        assert api.status == 401


async def test_logout_ends_the_session_server_side(sessionmaker: Any, db_url: str,
                                                   tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path) as client:
        csrf = await login(client, "xiaoli")
        stolen = client.session.cookie_jar.filter_cookies(client.make_url("/"))[SESSION_COOKIE].value
        resp = await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == "/login"
        # Replaying the old cookie does not work: the session is gone from the database.
        client.session.cookie_jar.update_cookies({SESSION_COOKIE: stolen})
        assert (await client.get("/agent", allow_redirects=False)).status == 302


async def test_post_without_or_with_wrong_csrf_token_is_forbidden(sessionmaker: Any, db_url: str,
                                                                 tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path) as client:
        csrf = await login(client, "xiaoli")
        for headers in ({}, {"X-CSRF-Token": "wrong"}):
            r = await client.post("/api/console/status", json={"state": "paused"}, headers=headers)
            assert r.status == 403 and (await r.json())["details"]["reason"] == "csrf"
        r = await client.post("/api/console/status", data={"state": "paused"})
        assert r.status == 403
        r = await client.post("/api/console/status", data={"state": "paused", "csrf_token": "x"})
        assert r.status == 403
        r = await client.post("/logout", allow_redirects=False)
        assert r.status == 403
        # The right token in the header (fetch) or the form field (page) passes.
        r = await client.post("/api/console/status", json={"state": "paused", "reason": "用餐"},
                              headers={"X-CSRF-Token": csrf})
        assert r.status == 200 and (await r.json()) == {"state": "paused", "reason": "用餐",
                                                        "label": "小休"}
        r = await client.post("/api/console/status", data={"state": "ready", "csrf_token": csrf},
                              allow_redirects=False)
        assert r.status == 302


async def test_roles_guard_pages(sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path) as client:
        await login(client, "xiaoli")
        assert (await client.get("/supervisor")).status == 403
        assert (await client.get("/admin/audit")).status == 403
        assert (await client.get("/admin/audit.csv")).status == 403


async def test_disabled_user_cannot_sign_in_and_loses_open_sessions(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    from sqlalchemy import update

    from callcenter.directory.models import StaffUser

    await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path) as client:
        await login(client, "xiaoli")
        async with sessionmaker() as s:
            await s.execute(update(StaffUser).where(StaffUser.username == "xiaoli")
                            .values(active=False))
            await s.commit()
        assert (await client.get("/agent", allow_redirects=False)).status == 302
        token = await _login_form_token(client)
        r = await client.post("/login", data={"username": "xiaoli", "password": PASSWORD,
                                              "csrf_token": token}, allow_redirects=False)
        assert r.status == 401


async def test_login_next_only_follows_local_paths(sessionmaker: Any, db_url: str,
                                                   tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    async with running_app(db_url, tmp_path) as client:
        for target, expected in (("/search?q=1", "/search?q=1"), ("//evil.example/", "/agent"),
                                 ("https://evil.example/", "/agent")):
            client.session.cookie_jar.clear()
            token = await _login_form_token(client)
            r = await client.post("/login", data={"username": "xiaoli", "password": PASSWORD,
                                                  "csrf_token": token, "next": target},
                                  allow_redirects=False)
            assert r.status == 302 and r.headers["Location"] == expected


async def test_each_role_lands_on_its_own_home(sessionmaker: Any, db_url: str,
                                               tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    homes = {"xiaoli": "/agent", "boss": "/supervisor", "gong": "/tickets?mine=1",
             "root": "/admin/ivr", "laowang": "/duty"}
    settings = replace(make_settings(db_url, tmp_path), fastagi=FastAgiSettings(enabled=False))
    for username, home in homes.items():
        async with serving(create_app(settings, transcribe=False)) as client:
            token = await _login_form_token(client)
            resp = await client.post("/login", data={"username": username, "password": PASSWORD,
                                                     "csrf_token": token}, allow_redirects=False)
            assert resp.status == 302 and resp.headers["Location"] == home, username
            resp = await client.get("/", allow_redirects=False)
            assert resp.headers["Location"] == home, username
            assert (await client.get(home)).status == 200, username
