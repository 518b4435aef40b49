"""A real Asterisk queue call (recorded AMI stream) through the real parser and
call tracker onto the bus: the agent whose extension the queue rang gets the pop,
then sees it answered by them, then ended."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callcenter.ami.captures import server_bytes
from callcenter.ami.parser import Frame, FrameParser
from callcenter.appkeys import BUS
from callcenter.auth.passwords import hash_password
from callcenter.calls.tracker import CallTracker
from callcenter.directory.models import Person, PersonPhone, PersonRoom, StaffUser
from tests.console.helpers import FAST_HASHER, PASSWORD, login, running_app, seed_directory

CAPTURE = Path(__file__).resolve().parents[1] / "fixtures" / "asterisk" / "05_queue.txt"


async def test_recorded_queue_call_pops_on_the_rung_agent(sessionmaker: Any, db_url: str,
                                                          tmp_path: Path) -> None:
    seed = await seed_directory(sessionmaker)
    async with sessionmaker() as s:
        caller = Person(name="张三")
        caller.phones.append(PersonPhone(number="+8613700000000", raw="13700000000"))
        caller.rooms.append(PersonRoom(room_id=seed.rooms["5-2-0301"], role="owner"))
        s.add(caller)
        s.add(StaffUser(username="agent1001", display_name="一号坐席", role="agent",
                        extension="1001", all_communities=True, password_hash=hash_password(FAST_HASHER, PASSWORD)))
        await s.commit()
    frames = [f for f in FrameParser().feed(server_bytes(CAPTURE.read_bytes()))
              if isinstance(f, Frame)]
    async with running_app(db_url, tmp_path) as client:
        await login(client, "agent1001")
        ws = await client.ws_connect("/ws/agent")
        bus = client.app[BUS]
        tracker = CallTracker("pbx1", bus.publish, community="hupan")
        for f in frames:
            tracker.handle(f, datetime.now(UTC))
            await bus.drain()
        states = []
        while True:
            msg = await ws.receive_json(timeout=5)
            if msg["type"] != "pop":
                continue
            states.append(msg["call"]["state"])
            if msg["call"]["state"] == "ringing":
                assert msg["call"]["call_id"] == "probe-q-1"
                assert msg["pop"]["title"] == "张三" and msg["call"]["queue"] == "frontdesk"
                assert msg["pop"]["caller"]["display"] == "13700000000"
                assert msg["pop"]["community"]["name"] == "湖畔花园"
            if msg["call"]["state"] == "answered":
                assert msg["call"]["answered_by_me"]
            if msg["call"]["state"] == "ended":
                break
        assert states[0] == "ringing" and "answered" in states and states[-1] == "ended"
        await ws.close()
