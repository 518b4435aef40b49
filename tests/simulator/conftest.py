"""Fixtures shared by the stand-in's tests: each module brings its own ``standin``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from callcenter.simulator import AsteriskStandIn
from tests.simulator.amiclient import MiniAmi


@pytest.fixture
async def client(standin: AsteriskStandIn) -> AsyncIterator[MiniAmi]:
    """A raw AMI connection to the module's stand-in, not logged in."""
    c = await MiniAmi.connect(standin.ami_port)
    yield c
    await c.close()
