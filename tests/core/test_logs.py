"""Every log line made while handling a call carries the call's ids."""

from __future__ import annotations

import asyncio
import logging

import pytest

from callcenter.logs import CallContextFilter, bind_call


async def test_call_ids_follow_each_task(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.calls")
    caplog.handler.addFilter(CallContextFilter())
    caplog.set_level(logging.INFO)

    async def call(linkedid: str) -> None:
        with bind_call(linkedid=linkedid, uniqueid=linkedid + ".1"):
            await asyncio.sleep(0)
            log.info("menu")

    await asyncio.gather(call("100.1"), call("200.1"))
    log.info("outside")
    calls = {r.getMessage(): r.call for r in caplog.records}  # type: ignore[attr-defined]
    lines = sorted(r.call for r in caplog.records if r.getMessage() == "menu")  # type: ignore[attr-defined]
    assert lines == [" [linkedid=100.1 uniqueid=100.1.1]", " [linkedid=200.1 uniqueid=200.1.1]"]
    assert calls["outside"] == ""
