"""The router's verdict on a ring, end to end: the whole server against the stand-in.

Real Asterisk answers ``EXEC Dial`` with ``200 result=-1`` when the callee
answered and later hung up, though the caller is still on the line (capture
08): the ring is ``answered``. A caller who really hangs up while the phone
rings still ends the chain as ``caller_gone``. Both transports."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import unquote

from callcenter.oncall.models import OnCallAttempt
from callcenter.oncall.services import OnCallPerson
from callcenter.simulator import Answer, HangUp, Phone, Press, Wait
from tests.integration.test_hotline_routing_e2e import (
    OWNER,
    TRANSPORTS,
    Site,
    _attempts,
    _call,
    _ended_call,
    _night_site,
    _phones_of,
)


async def _settled(site: Site) -> list[OnCallAttempt]:
    """The attempts once each has its outcome (a caller's hang-up can reach the
    call log before the router writes the ring's end)."""
    for _ in range(100):
        attempts = await _attempts(site)
        if attempts and all(a.outcome for a in attempts):
            return attempts
        await asyncio.sleep(0.05)
    return await _attempts(site)


def _asyncagi_results(events: list[dict[str, str]]) -> list[str]:
    return [unquote(e.get("Result", "")) for e in events if e.get("Event") == "AsyncAGIExec"]


@TRANSPORTS
async def test_a_ring_the_callee_answers_and_hangs_up_is_logged_answered(
        db_url: str, tmp_path: Path, transport: str) -> None:
    """The first on the chain answers, talks and hangs up first: Dial returns -1
    while the caller is still there. That ring is ``answered`` and nobody else rings."""
    def phones(chain: list[OnCallPerson]) -> list[Phone]:
        return [Phone(n, answer_after=2, script=[Wait(3), HangUp()]) for n in _phones_of(chain[0])]

    site, chain = await _night_site(db_url, tmp_path, transport, phones)
    try:
        site.standin.place_call(_call(OWNER, Press("0"), Wait(60), HangUp()))
        await _ended_call(site, OWNER)
        attempts = await _settled(site)
        assert [(a.user_id, a.outcome, a.dial_status) for a in attempts] == [
            (chain[0].user_id, "answered", "ANSWER")]
        assert "ANSWER" in [e["DialStatus"] for e in site.events("DialEnd")]
        if transport == "asyncagi":
            # Dial said -1, then the caller's channel answered the next commands
            results = _asyncagi_results([dict(f) for f in site.standin.events])
            after = results[results.index("200 result=-1\n") + 1:]
            assert "200 result=1 (ANSWER)\n" in after
    finally:
        await site.client.close()
        await site.standin.stop()


@TRANSPORTS
async def test_a_caller_who_hangs_up_while_it_rings_is_caller_gone(
        db_url: str, tmp_path: Path, transport: str) -> None:
    def phones(chain: list[OnCallPerson]) -> list[Phone]:
        return [Phone(n, behaviour=Answer.NO_ANSWER) for p in chain for n in _phones_of(p)]

    site, _chain = await _night_site(db_url, tmp_path, transport, phones)
    try:
        site.standin.place_call(_call(OWNER, Press("0"), Wait(5), HangUp()))
        await _ended_call(site, OWNER)
        attempts = await _settled(site)
        assert [a.outcome for a in attempts] == ["caller_gone"]
    finally:
        await site.client.close()
        await site.standin.stop()

