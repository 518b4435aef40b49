"""The whole server (``create_app``) on the demo community, with API tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from callcenter.app import create_app
from callcenter.auth.tokens import create_token
from callcenter.demo import demo_settings
from callcenter.directory.models import StaffUser
from callcenter.settings import DatabaseSettings
from tests.console.helpers import serving
from tests.integration.demo_db import demo_db


@dataclass(frozen=True)
class Api:
    client: TestClient[Any, Any]
    supervisor: dict[str, str]  # headers: a supervisor's token bound to sup1
    agent: dict[str, str]  # an agent's token bound to agent1
    service: dict[str, str]  # a supervisor token bound to no person (a CRM's)


async def make_tokens(sm: Any) -> tuple[str, str, str]:
    async with sm() as s:
        users = {u.username: u.id for u in (await s.scalars(select(StaffUser))).all()}
        sup = await create_token(s, role="supervisor", name="fuzz-sup", user_id=users["sup1"])
        agent = await create_token(s, role="agent", name="fuzz-agent", user_id=users["agent1"])
        service = await create_token(s, role="supervisor", name="crm")
    return sup, agent, service


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def api(db_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """No Asterisk: telephony answers 503, everything else runs for real."""
    settings = replace(demo_settings(tmp_path, 0), database=DatabaseSettings(url=db_url),
                       asterisk=())
    async with demo_db(db_url, datetime.now(UTC).date()) as sm:
        sup, agent, service = await make_tokens(sm)
    async with serving(create_app(settings, transcribe=False)) as client:
        yield Api(client, bearer(sup), bearer(agent), bearer(service))
