"""Which community a call is for, from the number dialled (no query per call)."""

from __future__ import annotations

from typing import Any

import pytest

from callcenter.clock import ManualClock
from callcenter.directory.hotlines import CommunityResolver, HotlineDirectory, number_key
from callcenter.directory.models import Community


async def _communities(sm: Any) -> None:
    async with sm() as s:
        s.add(Community(code="hupan", name="湖畔花园", hotline_numbers=["400-800-1234"]))
        s.add(Community(code="binjiang", name="滨江小区",
                        hotline_numbers=["0755 6666 7777", "8001"]))
        await s.commit()


async def test_the_dialled_number_picks_the_community_then_the_link_then_the_default(
        sessionmaker: Any) -> None:
    await _communities(sessionmaker)
    resolver = CommunityResolver(HotlineDirectory(sessionmaker, ManualClock()), "hupan")
    # Any way the trunk spells the number finds the same community.
    for dnid in ("4008001234", "+864008001234", "864008001234"):
        choice = await resolver.for_call({"agi_dnid": dnid, "agi_extension": "s"})
        assert (choice.code, choice.rule) == ("hupan", "dialled number"), dnid
    # Asterisk says "unknown" for a local channel; the dialplan ran on the DID.
    choice = await resolver.for_call({"agi_dnid": "unknown", "agi_extension": "075566667777"})
    assert (choice.code, choice.rule) == ("binjiang", "dialled number")
    choice = await resolver.for_call({"agi_dnid": "8001"})  # an internal hotline extension
    assert choice.code == "binjiang"
    choice = await resolver.for_call({"agi_dnid": "unknown", "agi_extension": "s"}, "binjiang")
    assert (choice.code, choice.rule) == ("binjiang", "asterisk link")
    choice = await resolver.for_call({})
    assert (choice.code, choice.rule) == ("hupan", "default")


async def test_numbers_are_read_once_and_again_after_invalidate(sessionmaker: Any) -> None:
    await _communities(sessionmaker)
    queries: list[int] = []
    hotlines = HotlineDirectory(sessionmaker, ManualClock(), ttl_s=60)
    real_load = hotlines._load

    async def counted() -> dict[str, str]:
        queries.append(1)
        return await real_load()

    hotlines._snapshot._load = counted
    for _ in range(20):
        assert await hotlines.community_for(["4008001234"]) == "hupan"
    assert len(queries) == 1
    async with sessionmaker() as s:
        s.add(Community(code="xinyuan", name="新苑", hotline_numbers=["4008009999"]))
        await s.commit()
    assert await hotlines.community_for(["4008009999"]) is None  # the copy in memory
    hotlines.invalidate()
    assert await hotlines.community_for(["4008009999"]) == "xinyuan"
    assert len(queries) == 2


async def test_a_number_listed_twice_goes_to_the_first_and_is_reported(
        sessionmaker: Any, caplog: pytest.LogCaptureFixture) -> None:
    async with sessionmaker() as s:
        s.add(Community(code="a", name="甲", hotline_numbers=["4008001234"]))
        await s.commit()
        s.add(Community(code="b", name="乙", hotline_numbers=["400 800 1234"]))
        await s.commit()
    hotlines = HotlineDirectory(sessionmaker, ManualClock())
    assert await hotlines.community_for(["4008001234"]) == "a"
    assert "listed by both a and b" in caplog.text


def test_number_keys() -> None:
    assert number_key("0755-6666-7777") == number_key("+8675566667777") == "+8675566667777"
    assert number_key("8001") == "8001"
    assert number_key("s") is None and number_key("unknown") is None and number_key("") is None
