"""The pop a call gets: known owner, several rooms, household, unknown, withheld."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from callcenter.directory.masking import present_pop, sees_full_numbers
from callcenter.screenpop.builder import CallContext, PopBuilder
from callcenter.screenpop.sources import CallSummary, TicketSummary
from tests.console.helpers import OWNER_MOBILE, TENANT_MOBILE, seed_directory


class Tickets:
    def __init__(self, by_room: dict[int, list[TicketSummary]]) -> None:
        self.by_room = by_room
        self.asked: list[tuple[list[int], list[int]]] = []

    def open_tickets(self, conn: Connection, room_ids: Sequence[int],
                           person_ids: Sequence[int]) -> list[TicketSummary]:
        self.asked.append((list(room_ids), list(person_ids)))
        return [t for r in room_ids for t in self.by_room.get(r, [])]


class Calls:
    def recent_calls(self, conn: Connection, number: str,
                           limit: int) -> list[CallSummary]:
        assert number == "+86" + OWNER_MOBILE
        return [CallSummary(f"c{i}", datetime(2026, 11, 20, 8, i, tzinfo=UTC), "answered", "小李")
                for i in range(limit)]


async def test_known_owner_with_two_rooms_household_tickets_and_history(sessionmaker: Any) -> None:
    seed = await seed_directory(sessionmaker)
    r1, r2 = seed.rooms["3-1-1201"], seed.rooms["5-2-0301"]
    tickets = Tickets({r1: [TicketSummary(7, r1, "厨房漏水", "in_progress", "处理中", "T-7")]})
    builder = PopBuilder(sessionmaker, tickets=tickets, calls=Calls())
    pop = await builder.build(CallContext(call_id="1700000000.1", caller="+86 138-1234-5678",
                                          community="hupan", queue="frontdesk",
                                          ivr_path=("报修", "水电")))
    assert pop["known"] and pop["title"] == "张伟"
    assert pop["caller"]["e164"] == "+8613812345678"
    assert pop["community"] == {"code": "hupan", "name": "湖畔花园"}
    assert pop["ivr_path"] == ["报修", "水电"] and pop["queue"] == "frontdesk"
    assert pop["tags"] == ["VIP"]
    rooms = {r["room_id"]: r for r in pop["rooms"]}
    assert set(rooms) == {r1, r2}
    assert rooms[r1]["label"] == "湖畔花园3栋1单元1201室"
    assert rooms[r1]["arrears"] == "1200.50" and rooms[r1]["in_arrears"]
    assert rooms[r2]["arrears"] == "0.00" and not rooms[r2]["in_arrears"]
    assert pop["arrears_total"] == "1200.50"
    assert [t["title"] for t in rooms[r1]["open_tickets"]] == ["厨房漏水"]
    assert rooms[r1]["open_tickets"][0]["state_label"] == "处理中"
    assert rooms[r2]["open_tickets"] == []
    assert tickets.asked == [([r1, r2], [seed.people["张伟"]])]
    # Household: family in 1201 and the tenant of 0301, not the caller again.
    household = {p["name"]: p for p in pop["household"]}
    assert set(household) == {"李娜", "王芳"}
    assert household["李娜"]["role"] == "family"
    assert household["王芳"]["rooms"][0]["role"] == "tenant"
    assert [c["call_id"] for c in pop["recent_calls"]] == ["c0", "c1", "c2", "c3", "c4"]


async def test_number_shared_by_two_people_finds_both(sessionmaker: Any) -> None:
    seed = await seed_directory(sessionmaker)
    from callcenter.directory.models import PersonPhone

    async with sessionmaker() as s:
        s.add(PersonPhone(person_id=seed.people["李娜"], number="+86" + OWNER_MOBILE))
        await s.commit()
    pop = await PopBuilder(sessionmaker).build(CallContext(call_id="x", caller=OWNER_MOBILE))
    assert pop["title"] == "张伟、李娜"
    assert [p["name"] for p in pop["people"]] == ["张伟", "李娜"]
    assert "李娜" not in {p["name"] for p in pop["household"]}


async def test_tenant_sees_own_room_only(sessionmaker: Any) -> None:
    seed = await seed_directory(sessionmaker)
    pop = await PopBuilder(sessionmaker).build(CallContext(call_id="y", caller=TENANT_MOBILE))
    assert pop["title"] == "王芳"
    assert [r["room_id"] for r in pop["rooms"]] == [seed.rooms["5-2-0301"]]
    assert [p["name"] for p in pop["household"]] == ["张伟"]


async def test_unknown_and_withheld_numbers(sessionmaker: Any) -> None:
    await seed_directory(sessionmaker)
    builder = PopBuilder(sessionmaker)
    unknown = await builder.build(CallContext(call_id="u", caller="13500009999", community="hupan"))
    assert not unknown["known"] and unknown["title"] == "陌生来电"
    assert unknown["caller"]["e164"] == "+8613500009999"
    assert unknown["people"] == [] and unknown["rooms"] == [] and unknown["household"] == []
    assert unknown["community"]["name"] == "湖畔花园"
    for raw in ("", "anonymous", "0"):
        pop = await builder.build(CallContext(call_id="w", caller=raw))
        assert not pop["known"] and pop["caller"]["e164"] == ""
        assert pop["title"] in ("陌生来电", "未显示号码")
    assert (await builder.build(CallContext(call_id="w", caller="")))["title"] == "未显示号码"


def test_masking_rules_per_role() -> None:
    assert sees_full_numbers("supervisor", own_call=False)
    assert sees_full_numbers("admin", own_call=False)
    assert sees_full_numbers("agent", own_call=True)
    assert not sees_full_numbers("agent", own_call=False)
    assert sees_full_numbers("night_duty", own_call=True)
    assert not sees_full_numbers("engineer", own_call=True)
    pop = {"caller": {"e164": "+8613812345678", "display": ""},
           "people": [{"phones": ["+8613812345678"]}],
           "household": [{"phones": ["+8613700002222", "+867552654321"]}]}
    masked = present_pop(pop, "engineer", own_call=True)
    assert masked["caller"]["display"] == "138****5678" and masked["caller"]["masked"]
    assert "e164" not in masked["caller"]
    assert masked["people"][0]["phones"] == ["138****5678"]
    assert masked["household"][0]["phones"][0] == "137****2222"
    assert "+86" not in str(masked)
    full = present_pop(pop, "agent", own_call=True)
    assert full["caller"]["display"] == "13812345678" and not full["caller"]["masked"]
    assert full["household"][0]["phones"][0] == "13700002222"
    # The built pop itself is left untouched (it is presented again for every frame).
    assert pop == {"caller": {"e164": "+8613812345678", "display": ""},
                   "people": [{"phones": ["+8613812345678"]}],
                   "household": [{"phones": ["+8613700002222", "+867552654321"]}]}


class CallsOfEveryOutcome:
    """One call per outcome the call log writes, at 08:00 UTC (16:00 in Shanghai)."""

    def recent_calls(self, conn: Connection, number: str,
                           limit: int) -> list[CallSummary]:
        outcomes = ("answered", "abandoned", "voicemail", "emergency", "ivr_only")
        return [CallSummary(f"c{i}", datetime(2026, 11, 20, 8, i, tzinfo=UTC), o)
                for i, o in enumerate(outcomes)]


async def test_recent_calls_read_in_the_site_time_zone_with_chinese_outcomes(
        sessionmaker: Any) -> None:
    await seed_directory(sessionmaker)
    pop = await PopBuilder(sessionmaker, calls=CallsOfEveryOutcome(),
                           timezone="Asia/Shanghai").build(
        CallContext(call_id="t", caller=OWNER_MOBILE))
    recent = pop["recent_calls"]
    assert [c["at_local"] for c in recent] == [f"2026-11-20 16:0{i}" for i in range(5)]
    assert recent[0]["at"].startswith("2026-11-20T08:00")  # the machine time stays UTC
    assert [c["outcome_label"] for c in recent] == [
        "已接听", "来电放弃", "留言", "紧急呼叫", "语音自助"]
    # A UTC site shows the UTC time.
    utc = await PopBuilder(sessionmaker, calls=CallsOfEveryOutcome(), timezone="UTC").build(
        CallContext(call_id="t", caller=OWNER_MOBILE))
    assert utc["recent_calls"][0]["at_local"] == "2026-11-20 08:00"


def test_every_call_log_outcome_has_a_chinese_label() -> None:
    from callcenter.calls.models import OUTCOMES
    from callcenter.screenpop.builder import outcome_label

    for outcome in (*OUTCOMES, "ended"):
        label = outcome_label(outcome)
        assert label and all(not ch.isascii() for ch in label), (outcome, label)
