"""Admins reload the hotline menus from the console; a broken file changes nothing."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from callcenter.app import create_core_app
from callcenter.appkeys import CLOCK
from callcenter.auth.sessions import CSRF_HEADER
from callcenter.console.setup import setup_console
from callcenter.screenpop.setup import setup_screenpop
from ivr.admin.menus_http import IVR_RELOADER, add_routes
from ivr.admin.reloader import MenuReloader
from ivr.menus import DEFAULT_MENUS, MenuStore
from tests.console.helpers import FAST_HASHER, login, make_settings, seed_directory, serving


@asynccontextmanager
async def admin_app(db_url: str, tmp: Path, menus: Path
                    ) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_core_app(make_settings(db_url, tmp))
    setup_console(app, hasher=FAST_HASHER)
    setup_screenpop(app, wall_debounce_s=0, audit_flush_s=0)  # admins land on the wall
    add_routes(app)
    app[IVR_RELOADER] = MenuReloader(MenuStore(menus), app[CLOCK])
    async with serving(app) as client:
        yield client


def _menu_copy(tmp: Path) -> Path:
    path = tmp / "menus.toml"
    shutil.copyfile(DEFAULT_MENUS, path)
    return path


async def test_admin_reloads_and_a_broken_file_keeps_the_menus_in_force(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    menus = _menu_copy(tmp_path)
    async with admin_app(db_url, tmp_path, menus) as client:
        csrf = await login(client, "root")
        store = client.app[IVR_RELOADER].store
        in_progress = store.current()  # a call that started before the edit

        menus.write_text(menus.read_text(encoding="utf-8").replace(
            'label = "水电"', 'label = "水电维修"'), encoding="utf-8")
        r = await client.post("/api/admin/ivr/reload", headers={CSRF_HEADER: csrf})
        assert r.status == 200
        body = await r.json()
        assert body["version"] == 2 and body["loaded_by"] == "root"
        assert body["source"] == str(menus)
        assert store.current().menus["repair"].options["1"].label == "水电维修"

        menus.write_text(menus.read_text(encoding="utf-8").replace(
            'action = "queue", queue = "frontdesk" }', 'action = "teleport" }', 1),
            encoding="utf-8")
        r = await client.post("/api/admin/ivr/reload", headers={CSRF_HEADER: csrf})
        assert r.status == 400
        err = await r.json()
        assert str(menus) in err["message"] and "teleport" in err["message"]
        assert err["details"]["field"] == "menus"
        assert store.current().version == 2  # the old menus stay
        assert in_progress.version == 1 and in_progress.menus["repair"].options["1"].label == "水电"

        page = await client.get("/admin/ivr")
        text = await page.text()
        assert page.status == 200 and "第 2 版" in text and "teleport" in text  # the last error


async def test_the_page_button_reloads_and_others_may_not(
        sessionmaker: Any, db_url: str, tmp_path: Path) -> None:
    await seed_directory(sessionmaker)
    menus = _menu_copy(tmp_path)
    async with admin_app(db_url, tmp_path, menus) as client:
        r = await client.get("/admin/ivr", allow_redirects=False)
        assert r.status == 302 and r.headers["Location"] == "/login?next=/admin/ivr"

        csrf = await login(client, "xiaoli")  # an agent
        assert (await client.get("/admin/ivr")).status == 403
        r = await client.post("/api/admin/ivr/reload", headers={CSRF_HEADER: csrf})
        assert r.status == 403
        assert client.app[IVR_RELOADER].store.current().version == 1

        csrf = await login(client, "root")
        r = await client.post("/admin/ivr/reload", data={"csrf_token": "forged"})
        assert r.status == 403
        r = await client.post("/admin/ivr/reload", data={"csrf_token": csrf})
        assert r.status == 200 and "菜单已重新加载：第 2 版" in await r.text()
        menus.write_text("[menus.main", encoding="utf-8")
        r = await client.post("/admin/ivr/reload", data={"csrf_token": csrf})
        assert r.status == 400 and "菜单未重新加载，仍使用原菜单" in await r.text()
        assert client.app[IVR_RELOADER].store.current().version == 2


async def test_sighup_reloads_the_menus_of_the_running_server(db_url: str, tmp_path: Path
                                                              ) -> None:
    import asyncio
    import os
    import signal
    from dataclasses import replace

    from callcenter.app import create_app
    from callcenter.settings import FastAgiSettings

    menus = _menu_copy(tmp_path)
    settings = replace(make_settings(db_url, tmp_path), ivr_menus=(menus,),
                       fastagi=FastAgiSettings(enabled=False))
    client = TestClient(TestServer(create_app(settings, transcribe=False)))
    await client.start_server()
    try:
        reloader = client.app[IVR_RELOADER]
        menus.write_text(menus.read_text(encoding="utf-8").replace(
            'label = "水电"', 'label = "水电维修"'), encoding="utf-8")
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(100):
            if reloader.store.current().version == 2:
                break
            await asyncio.sleep(0.01)
        assert reloader.store.current().menus["repair"].options["1"].label == "水电维修"
        assert reloader.status()["loaded_by"] == "SIGHUP"
    finally:
        await client.close()
