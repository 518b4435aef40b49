"""Where a ticket is: the caller's directory record against what the transcript says.

- The caller owns exactly one room: that room. If the transcript names a
  different building/unit/room, the ticket is flagged ``location_conflict``.
- The caller owns several rooms: the one the transcript names; if it names
  none of theirs, the room it names (when the directory has exactly one such
  room) and a conflict flag.
- Unknown caller: the room the transcript names, when the directory has
  exactly one such room.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ticketing.services import RoomPlace, find_rooms, room_place


@dataclass(frozen=True, slots=True)
class SaidLocation:
    building: str | None = None
    unit: str | None = None
    room: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.building or self.unit or self.room)

    @property
    def label(self) -> str:
        parts = []
        if self.building:
            parts.append(f"{self.building}栋")
        if self.unit:
            parts.append(f"{self.unit}单元")
        if self.room:
            parts.append(f"{self.room}室")
        return "".join(parts)


@dataclass(frozen=True, slots=True)
class LocationDecision:
    room: RoomPlace | None
    community_id: int | None
    label: str
    conflict: bool


def disagrees(place: RoomPlace, said: SaidLocation) -> bool:
    """True when the transcript names a building, unit or room that is not this one."""
    if said.building and said.building.upper() != place.building.upper():
        return True
    if said.unit and place.unit and said.unit != place.unit:
        return True
    return bool(said.room and said.room != place.room)


async def decide_location(session: AsyncSession, caller_room_ids: Sequence[int],
                          said: SaidLocation, *, default_community_id: int | None = None
                          ) -> LocationDecision:
    places: list[RoomPlace] = []
    for rid in dict.fromkeys(caller_room_ids):
        place = await room_place(session, rid)
        if place is not None:
            places.append(place)
    communities = tuple(dict.fromkeys(p.community_id for p in places))

    async def named_room(scope: tuple[int, ...]) -> RoomPlace | None:
        if not (said.building and said.room):
            return None
        found = await find_rooms(session, building=said.building, unit=said.unit,
                                 room=said.room, community_ids=scope)
        return found[0] if len(found) == 1 else None

    if len(places) == 1:
        place = places[0]
        return LocationDecision(place, place.community_id, place.label, disagrees(place, said))
    if len(places) > 1:
        if not said.empty:
            matching = [p for p in places if not disagrees(p, said)]
            if len(matching) == 1:
                return LocationDecision(matching[0], matching[0].community_id,
                                        matching[0].label, False)
            if not matching:
                other = await named_room(communities)
                community = other.community_id if other else (
                    communities[0] if len(communities) == 1 else default_community_id)
                return LocationDecision(other, community, other.label if other else said.label,
                                        True)
        community = communities[0] if len(communities) == 1 else default_community_id
        return LocationDecision(None, community, said.label, False)
    scope = (default_community_id,) if default_community_id is not None else ()
    other = await named_room(scope)
    if other is not None:
        return LocationDecision(other, other.community_id, other.label, False)
    return LocationDecision(None, default_community_id, said.label, False)
