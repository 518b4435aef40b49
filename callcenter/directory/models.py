"""Tables of the directory of owners and staff."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    UniqueConstraint,
    false,
    or_,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from callcenter.db.base import Base, UtcDateTime, utcnow

PERSON_ROLES = ("owner", "tenant", "family")
STAFF_ROLES = ("agent", "night_duty", "engineer", "supervisor", "admin")


class Community(Base):
    """A 小区/项目. ``code`` is the short stable key used in settings and menus."""

    __tablename__ = "communities"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    hotline_numbers: Mapped[list[str]] = mapped_column(JSON, default=list)

    buildings: Mapped[list[Building]] = relationship(back_populates="community")


class Building(Base):
    """A 楼栋: "3", "12", "B"."""

    __tablename__ = "buildings"
    __table_args__ = (UniqueConstraint("community_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(32))

    community: Mapped[Community] = relationship(back_populates="buildings")
    units: Mapped[list[Unit]] = relationship(back_populates="building")


class Unit(Base):
    """A 单元. Buildings without units have one unit whose name is ``""``."""

    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("building_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(32), default="")

    building: Mapped[Building] = relationship(back_populates="units")
    rooms: Mapped[list[Room]] = relationship(back_populates="unit")


class Room(Base):
    """A 房号 within a unit."""

    __tablename__ = "rooms"
    __table_args__ = (UniqueConstraint("unit_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(32))

    unit: Mapped[Unit] = relationship(back_populates="rooms")
    fee_account: Mapped[FeeAccount | None] = relationship(back_populates="room", uselist=False)
    residents: Mapped[list[PersonRoom]] = relationship(back_populates="room")


person_tags = Table(
    "person_tags",
    Base.metadata,
    Column("person_id", ForeignKey("people.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
)


class Person(Base):
    """An owner, tenant or family member."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    note: Mapped[str] = mapped_column(String(500), default="")
    do_not_call: Mapped[bool] = mapped_column(Boolean, default=False)
    """勿扰: the owner asked not to be called by campaigns (surveys, reminders);
    a callback they asked for and emergency paging are not campaigns."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    phones: Mapped[list[PersonPhone]] = relationship(
        back_populates="person", cascade="all, delete-orphan"
    )
    rooms: Mapped[list[PersonRoom]] = relationship(
        back_populates="person", cascade="all, delete-orphan"
    )
    tags: Mapped[list[Tag]] = relationship(secondary=person_tags)


class PersonPhone(Base):
    """One phone number of a person, stored normalised (E.164 digits without '+')."""

    __tablename__ = "person_phones"
    __table_args__ = (
        UniqueConstraint("person_id", "number"),
        Index("ix_person_phones_number", "number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(32))
    raw: Mapped[str] = mapped_column(String(64), default="")
    kind: Mapped[str] = mapped_column(String(16), default="mobile")
    position: Mapped[int] = mapped_column(Integer, default=0)

    person: Mapped[Person] = relationship(back_populates="phones")


class PersonRoom(Base):
    """A person's link to a room, with a role: owner, tenant or family."""

    __tablename__ = "person_rooms"
    __table_args__ = (UniqueConstraint("person_id", "room_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16), default="owner")

    person: Mapped[Person] = relationship(back_populates="rooms")
    room: Mapped[Room] = relationship(back_populates="residents")


class Tag(Base):
    """VIP, 夜班族, 情绪易激动 ..."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class FeeAccount(Base):
    """The property-fee account of one room."""

    __tablename__ = "fee_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), unique=True)
    area_m2: Mapped[Decimal | None] = mapped_column(Numeric(10, 2), nullable=True)
    arrears: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0"))
    last_payment_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_payment_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2), nullable=True)

    room: Mapped[Room] = relationship(back_populates="fee_account")


class StaffUser(Base):
    """A member of staff: front-desk agent, night duty, engineer, supervisor, admin."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    role: Mapped[str] = mapped_column(String(16), index=True)
    extension: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    mobile: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    # The communities the person works for: every one when ``all_communities`` (an admin,
    # head office), else those of ``memberships`` (none: no community's data at all).
    all_communities: Mapped[bool] = mapped_column(Boolean, default=False,
                                                  server_default=false())
    # Before migration 0009 a person's only community; since then always NULL (moved to
    # ``memberships``). The column stays: dropping it rebuilds staff_users on SQLite,
    # and its ON DELETE CASCADE would take sessions, tokens and on-call overrides along.
    legacy_community_id: Mapped[int | None] = mapped_column(
        "community_id", ForeignKey("communities.id", ondelete="SET NULL"), nullable=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    notify: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    memberships: Mapped[list[StaffCommunity]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", passive_deletes=True)

    @property
    def scope(self) -> frozenset[int] | None:
        """The ids of the communities whose data this person sees; None: every one."""
        if self.all_communities:
            return None
        return frozenset(m.community_id for m in self.memberships)


class StaffCommunity(Base):
    """One community a member of staff works for (see ``StaffUser.all_communities``)."""

    __tablename__ = "staff_communities"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True)
    community_id: Mapped[int] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE"), primary_key=True, index=True)


def works_for(community_id: int) -> ColumnElement[bool]:
    """Staff who work for ``community_id``: its members and those who see every community."""
    return or_(StaffUser.all_communities.is_(True), StaffUser.id.in_(
        select(StaffCommunity.user_id).where(StaffCommunity.community_id == community_id)))
