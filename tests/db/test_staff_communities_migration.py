"""Migration 0010: a database of people with one community each (or none) upgrades
to staff_communities / all_communities without losing who sees what. And 0008 keeps
every ticket's history on SQLite (its table rebuild used to cascade it away)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.auth.sessions import _identity
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.directory.models import StaffUser
from tests.conftest import _pg_admin, _pg_dsn


@pytest.fixture
async def old_engine(db_backend: str, tmp_path: Path, request: pytest.FixtureRequest
                     ) -> AsyncIterator[AsyncEngine]:
    """An empty database of the backend, migrated up to 0008 (or the test's mark)."""
    name = ""
    if db_backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    else:
        name = f"cc_mig_{uuid.uuid4().hex[:12]}"
        await _pg_admin(f'CREATE DATABASE "{name}"')
        url = _pg_dsn(name)
    engine = make_engine(url)
    mark = request.node.get_closest_marker("revision")
    await migrate(engine, mark.args[0] if mark else "0008_ticket_listen")
    try:
        yield engine
    finally:
        await engine.dispose()
        if name:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_each_person_keeps_their_community_and_the_unbound_keep_every_one(
        old_engine: AsyncEngine) -> None:
    async with old_engine.begin() as conn:
        for code, name in (("hupan", "湖畔花园"), ("binjiang", "滨江苑")):
            await conn.execute(text(
                "INSERT INTO communities (code, name, timezone, hotline_numbers) "
                "VALUES (:c, :n, 'Asia/Shanghai', '[]')"), {"c": code, "n": name})
        ids = dict((await conn.execute(text("SELECT code, id FROM communities"))).all())
        for user, community in (("a_agent", ids["hupan"]), ("b_agent", ids["binjiang"]),
                                ("head", None)):
            await conn.execute(text(
                "INSERT INTO staff_users (username, display_name, role, community_id, active, "
                "notify, created_at) VALUES (:u, :u, 'agent', :c, true, '{}', "
                "CURRENT_TIMESTAMP)"), {"u": user, "c": community})
        await conn.execute(text(
            "INSERT INTO api_tokens (name, role, token_hash, user_id, created_at, revoked) "
            "SELECT 'crm', 'agent', 'h', id, CURRENT_TIMESTAMP, false FROM staff_users "
            "WHERE username = 'a_agent'"))
    await migrate(old_engine)
    async with old_engine.connect() as conn:
        # SQLite's table rebuild would have cascaded: the person's token is still there.
        assert (await conn.execute(text("SELECT count(*) FROM api_tokens"))).scalar() == 1
    sm = make_sessionmaker(old_engine)
    async with sm() as s:
        users = {u.username: u for u in (await s.scalars(select(StaffUser))).all()}
    assert users["a_agent"].scope == frozenset({ids["hupan"]})
    assert users["b_agent"].scope == frozenset({ids["binjiang"]})
    assert users["head"].scope is None and users["head"].all_communities
    # And the sign-in identity carries exactly that.
    ident = _identity(users["a_agent"], "csrf")
    assert ident.sees(ids["hupan"]) and not ident.sees(ids["binjiang"])
    assert not ident.sees(None)
    assert _identity(users["head"], "csrf").sees(ids["binjiang"])


@pytest.mark.revision("0007_recording_hint")
async def test_0008_keeps_the_history_of_every_ticket(old_engine: AsyncEngine) -> None:
    async with old_engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO tickets (number, source, caller_number, caller_name, location, "
            "location_conflict, category, priority, department, state, summary, description, "
            "created_by, created_at, updated_at) VALUES ('T1', 'phone', '', '', '', false, "
            "'plumbing', 'normal', '', 'new', '漏水', '', 'x', CURRENT_TIMESTAMP, "
            "CURRENT_TIMESTAMP)"))
        await conn.execute(text(
            "INSERT INTO ticket_events (ticket_id, from_state, to_state, actor, at, note) "
            "SELECT id, NULL, 'new', 'x', CURRENT_TIMESTAMP, '' FROM tickets"))
    await migrate(old_engine)
    async with old_engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM ticket_events"))).scalar() == 1
