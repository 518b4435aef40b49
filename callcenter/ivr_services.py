"""The IVR's services, implemented with the real domains (composition root).

The engine in ``ivr/`` knows menus and keys; what a choice *does* — ring the
front-desk queue, the person on call, leave a voicemail, open an incident,
read a ticket or the arrears of a room — happens here, against the directory,
the on-call router, paging, tickets and the AMI call tracker.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.ami.links import AmiLinks
from callcenter.directory.models import Building, Community, FeeAccount, Room, Unit
from callcenter.directory.services import (
    caller_rooms_by_number,
    caller_rooms_on,
)
from callcenter.oncall.router import OnCallRouter
from callcenter.paging.services import IncidentRequest, PagingService
from callcenter.settings import Settings
from ivr.channel import Channel
from ivr.engine import Announcement, CallerInfo, RoomRef, VoicemailContext
from ivr.outages.services import OutageNotices
from recordings.ivr_hint import IvrHint, encode_hint
from ticketing.models import Ticket

log = logging.getLogger(__name__)


class HotlineServices:
    def __init__(self, settings: Settings, sm: async_sessionmaker[AsyncSession], *,
                 links: AmiLinks | None, router: OnCallRouter, paging: PagingService,
                 reader: Engine | None = None, outages: OutageNotices | None = None) -> None:
        """``reader``: a read-only synchronous engine on the SQLite file
        (``callcenter.db.reader.sqlite_reader``): the caller lookup every call
        starts with runs on it, on the event loop, instead of queueing for
        aiosqlite's pool when many calls arrive at once."""
        self.settings = settings
        self.sm = sm
        self.reader = reader
        self.links = links
        self.router = router
        self.paging = paging
        self.outages = outages

    async def identify_caller(self, number: str) -> CallerInfo:
        if self.reader is not None:
            with self.reader.connect() as conn:
                found = caller_rooms_on(conn, number)
        else:
            async with self.sm() as session:
                found = await caller_rooms_by_number(session, number)
        if found.name is None:
            return CallerInfo()
        return CallerInfo(name=found.name,
                          rooms=tuple(RoomRef(rid, label) for rid, label in found.rooms))

    async def outage_notices(self, community: str | None, caller: CallerInfo
                             ) -> list[Announcement]:
        if self.outages is None:
            return []
        return await self.outages.heard_by(community or self.settings.default_community,
                                           [r.room_id for r in caller.rooms])

    async def queue(self, channel: Channel, queue: str) -> str | None:
        await channel.exec("Queue", f"{queue},r,,,{self.settings.oncall.queue_wait_s}")
        return await channel.get_variable("QUEUESTATUS")

    async def route_oncall(self, channel: Channel, community: str | None, role: str,
                           context: VoicemailContext | None = None) -> str:
        if context is not None:
            # When nobody answers the router takes a message: it learns the call too.
            await self._set_hint(channel, context)
        result = await self.router.route(channel, community or self.settings.default_community, role)
        return str(getattr(result, "outcome", result))

    async def voicemail(self, channel: Channel, mailbox: str,
                        context: VoicemailContext | None = None) -> None:
        mailbox = mailbox or next(iter(self.settings.voicemail.mailboxes), "")
        if not mailbox:
            raise RuntimeError("no voicemail mailbox is configured ([voicemail] mailboxes)")
        if context is not None:
            log.info("voicemail %s after %s", mailbox, context.path_text)
            await self._set_hint(channel, context)
        box = mailbox if "@" in mailbox else f"{mailbox}@{self.settings.voicemail.context}"
        await channel.exec("VoiceMail", f"{box},s")

    @staticmethod
    async def _set_hint(channel: Channel, context: VoicemailContext) -> None:
        """app_voicemail writes VM_CATEGORY into the message's .txt: the ticket made
        of the message learns the room and the menu path from it."""
        await channel.set_variable("VM_CATEGORY", encode_hint(IvrHint(
            call_id=context.call_id, room_id=context.room.room_id if context.room else None,
            path=context.path)))

    async def emergency(self, channel: Channel, *, community: str | None, category: str,
                        caller: str, room: RoomRef | None, call_id: str) -> None:
        building = unit = number = ""
        if room is not None:
            async with self.sm() as session:
                row = (await session.execute(
                    select(Building.name, Unit.name, Room.number)
                    .join(Unit, Unit.building_id == Building.id).join(Room, Room.unit_id == Unit.id)
                    .where(Room.id == room.room_id))).first()
            if row is not None:
                building, unit, number = row
        if self.links is not None:
            self.links.mark_emergency(call_id)
        await self.paging.open_incident(IncidentRequest(
            community=community or self.settings.default_community, category=category,
            source="ivr", building=building, unit=unit, room=number,
            summary="业主来电选择紧急情况", caller_number=caller, call_id=call_id))
        # While the engineer is paged, the caller talks to the person on duty.
        await self.route_oncall(channel, community, "night_duty")

    async def transfer(self, channel: Channel, extension: str) -> None:
        pattern = self.settings.asterisk[0].extension_channel if self.settings.asterisk \
            else "PJSIP/{extension}"
        await channel.exec("Dial", f"{pattern.format(extension=extension)},30")

    async def ticket_status(self, digits: str) -> str | None:
        """The state of the ticket whose number's digits were keyed in."""
        wanted = re.sub(r"\D", "", digits)
        if len(wanted) < 4:
            return None
        async with self.sm() as session:
            candidates = (await session.scalars(
                select(Ticket).where(Ticket.number.like(f"%{wanted[-4:]}")))).all()
        for ticket in candidates:
            if re.sub(r"\D", "", ticket.number) == wanted:
                return str(ticket.state)
        return None

    async def fee_balance(self, room_id: int) -> Decimal | None:
        async with self.sm() as session:
            fee = (await session.scalars(
                select(FeeAccount).where(FeeAccount.room_id == room_id))).first()
        return fee.arrears if fee else None

    async def find_rooms(self, community: str | None, building: str, room: str,
                         unit: str | None = None) -> list[RoomRef]:
        code = community or self.settings.default_community
        stmt = (select(Room.id, Community.name, Building.name, Unit.name, Room.number)
                .join(Unit, Room.unit_id == Unit.id).join(Building, Unit.building_id == Building.id)
                .join(Community, Building.community_id == Community.id)
                .where(Building.name == building, Room.number == room)
                .order_by(Room.id).limit(10))
        if unit is not None:
            stmt = stmt.where(Unit.name == unit)
        if code:
            stmt = stmt.where(Community.code == code)
        async with self.sm() as session:
            rows = (await session.execute(stmt)).all()
        return [RoomRef(rid, f"{cname}{bname}栋{f'{uname}单元' if uname else ''}{number}室")
                for rid, cname, bname, uname, number in rows]

    async def record_choice(self, call_id: str, label: str) -> None:
        if self.links is not None:
            try:
                self.links.record_ivr_choice(call_id, label)
            except Exception:
                log.debug("no tracked call %s for the IVR choice", call_id, exc_info=True)
