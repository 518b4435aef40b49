"""Agents' states in the database (``agent_states``): written by the server where an
agent's state or console changed, re-read by the others after their bus connection
comes back (``callcenter.cluster``). Only wired with PostgreSQL: a single server on
SQLite keeps them in memory and re-reads them from the queue (``queue_sync``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.console.models import AgentStateRow

OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class SharedState:
    user_id: int
    state: str
    reason: str
    since: datetime
    online: bool
    server: str


class AgentStateStore:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessionmaker

    async def save(self, st: SharedState) -> None:
        values = {"state": st.state, "reason": st.reason[:40], "since": st.since,
                  "online": st.online, "server": st.server[:100]}
        for _ in range(2):
            try:
                async with self._sm() as session, session.begin():
                    result = await session.execute(
                        update(AgentStateRow).where(AgentStateRow.user_id == st.user_id)
                        .values(values))
                    if not getattr(result, "rowcount", 0):
                        session.add(AgentStateRow(user_id=st.user_id, **values))
                return
            except IntegrityError:
                continue  # another server inserted the row first: update it

    async def load(self) -> list[SharedState]:
        async with self._sm() as session:
            rows = (await session.scalars(select(AgentStateRow))).all()
        return [SharedState(r.user_id, r.state, r.reason, r.since, r.online, r.server)
                for r in rows]
