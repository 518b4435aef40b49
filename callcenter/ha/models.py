"""The lease of each Asterisk link (``callcenter.ha.lease``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db.base import Base, UtcDateTime


class HaLease(Base):
    """Who drives an ``[[asterisk]]`` link and until when, by the database's clock.

    ``epoch`` (the fencing number) grows by one each time the lease passes to a
    holder that did not hold it live: a holder whose epoch is not the row's any
    more has lost the link, whatever it believes."""

    __tablename__ = "ha_leases"

    link: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100), default="")
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    acquired_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
